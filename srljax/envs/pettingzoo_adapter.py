"""PettingZoo `ParallelEnv`s as one multi-agent CPU vector env (`srljax.envs.vector`), one shared policy.

    env = PettingZooVectorEnv.from_module("mpe2.simple_spread_v3", num_envs=8)   # pz/mpe2.simple_spread_v3
    env = PettingZooVectorEnv.from_factory(lambda: simple_spread_v3.parallel_env(N=3), num_envs=8)
    obs = env.reset(seed)                       # float32 [8, A, D + 1]
    obs, reward, terminated, truncated, info = env.step(actions)    # actions [8, A, ...]

Agent axis: slot a of every env is `possible_agents[a]`, after the env axis, as for hide-and-seek;
all agents act through one policy (`num_agents`, `action_space` per agent: every agent must have the
same action space; observation spaces may differ, `srljax.envs.space_check` says which kinds).
Each agent's observation is flattened (a Discrete one one-hot) and zero-padded to the widest agent's
width D, and column D (the last one, `presence_key = -1`) is 1 while the agent is in play: an
agent that is done, or absent, gets a row of zeros there, its actions are not passed to the env, its
reward is 0, and the dataflow does not learn from its steps (`learn` = 0).

An env's episode ends when no agent is left in play (`env.agents` empty); it is `terminated` when
every agent that ended on that step terminated, else `truncated` (bootstrapped from
`info["final_obs"]`). An agent that terminates on a step has presence 0 in that step's
`info["final_obs"]` row, which the learner reads as that agent's own termination
(`dataflow.multiagent.learner_batch`), so an agent that leaves early is not bootstrapped either.
Rewards are per agent [num_envs, A]; `info["episodes"]` reports each episode's `return` as the
mean over agents of their summed rewards and its `length` in steps.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from srljax.envs import spaces
from srljax.envs.gymnasium_adapter import convert_space
from srljax.envs.space_check import action_offset, describe, one_hot
from srljax.errors import UserError


class PettingZooVectorEnv:
    """`num_envs` copies of a PettingZoo ParallelEnv, stepped in numpy, auto-resetting."""

    presence_key = -1

    def __init__(self, envs: List[Any], seed: int = 0, name: str = "pettingzoo"):
        if not envs:
            raise UserError("num_envs must be >= 1")
        self.name, self._envs, self._seed = name, list(envs), int(seed)
        self.num_envs = len(envs)
        first = envs[0]
        self.agents_order = list(first.possible_agents)
        self.num_agents = len(self.agents_order)
        own = {a: first.action_space(a) for a in self.agents_order}
        acts = [convert_space(own[a], f"agent {a}'s action", name) for a in self.agents_order]
        offsets = [action_offset(own[a]) for a in self.agents_order]
        if any(a != acts[0] for a in acts[1:]) or any(not np.array_equal(o, offsets[0]) for o in offsets[1:]):
            differ = ", ".join(f"{a}: {describe(own[a])}" for a in self.agents_order[:4])
            raise UserError(f"env {name}: agents have different action spaces ({differ}"
                            f"{', ...' if self.num_agents > 4 else ''}); srljax's one shared policy needs one "
                            "action space for all agents (observation spaces may differ)")
        self.action_space, self._offset = acts[0], offsets[0]
        widths = []
        for a in self.agents_order:       # observation spaces may differ: flattened, zero-padded
            space = convert_space(first.observation_space(a), f"agent {a}'s observation", name)
            widths.append(int(np.prod(space.shape, dtype=np.int64)))
        self._encode = {a: one_hot(first.observation_space(a)) for a in self.agents_order}   # Discrete: one-hot
        self.width = max(widths)
        self.observation_space = spaces.Box(-np.inf, np.inf, (self.width + 1,))
        self._discrete = isinstance(self.action_space, spaces.Discrete)
        self._clip = (np.asarray(self.action_space.low, np.float32), np.asarray(self.action_space.high, np.float32)) \
            if isinstance(self.action_space, spaces.Box) else None
        shape = (self.num_envs, self.num_agents, self.width + 1)
        self._obs = np.zeros(shape, np.float32)
        self._final_obs = np.zeros(shape, np.float32)
        self._ep_return = np.zeros((self.num_envs, self.num_agents), np.float64)
        self._ep_length = np.zeros(self.num_envs, np.int64)

    @classmethod
    def from_factory(cls, factory: Callable[[], Any], num_envs: int = 1, seed: int = 0,
                     first: Any = None, name: Optional[str] = None) -> "PettingZooVectorEnv":
        """`num_envs` envs from `factory()`; `first`: one already made."""
        if int(num_envs) < 1:
            raise UserError(f"num_envs must be >= 1, got {num_envs}")
        envs = ([] if first is None else [first]) + [factory() for _ in range(int(num_envs) - (first is not None))]
        meta = getattr(envs[0], "metadata", None) or {}
        return cls(envs, seed, name or meta.get("name") or type(envs[0]).__name__)

    @classmethod
    def from_module(cls, module: str, num_envs: int = 1, seed: int = 0, **kwargs: Any) -> "PettingZooVectorEnv":
        """pz/MODULE: envs from `MODULE.parallel_env(**kwargs)`."""
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            raise UserError(f"pz/{module}: cannot import {module!r} ({exc}); PettingZoo envs need their "
                            "package, e.g. pip install 'srljax[pettingzoo]' for mpe2") from None
        if not callable(getattr(mod, "parallel_env", None)):
            raise UserError(f"pz/{module}: module {module!r} has no parallel_env()")
        return cls.from_factory(lambda: mod.parallel_env(**kwargs), num_envs, seed, name=f"pz/{module}")

    # -- stepping --------------------------------------------------------------------------------
    def _write(self, out: np.ndarray, obs: Dict[str, Any], alive, shown=None) -> None:
        """One env's observation dict into `out` [A, D + 1]: the agents in `shown` (default `alive`)
        with their observation, those in `alive` with presence 1."""
        out[:] = 0.0
        for a, agent in enumerate(self.agents_order):
            if agent in obs and agent in (alive if shown is None else shown):
                enc = self._encode[agent]
                x = (np.asarray(obs[agent], np.float32) if enc is None else enc(obs[agent])).ravel()
                out[a, :x.size] = x
                out[a, -1] = float(agent in alive)

    def reset(self, seed: Optional[int] = None) -> np.ndarray:
        seed = self._seed if seed is None else int(seed)
        for i, env in enumerate(self._envs):
            obs, _ = env.reset(seed=seed + i)
            self._write(self._obs[i], obs, env.agents)
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self._obs.copy()

    def _actions(self, env, acts: np.ndarray) -> Dict[str, Any]:
        if self._clip is not None:
            acts = np.clip(acts, *self._clip)
        if self._offset is not None:       # a Discrete / MultiDiscrete `start` (srljax acts in [0, n))
            acts = acts + self._offset
        index = {agent: a for a, agent in enumerate(self.agents_order)}
        return {agent: (int(acts[index[agent]]) if self._discrete else acts[index[agent]]) for agent in env.agents}

    def step(self, actions: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape[:2] != (self.num_envs, self.num_agents):
            raise ValueError(f"expected actions with leading axes ({self.num_envs}, {self.num_agents}), "
                             f"got shape {actions.shape}")
        reward = np.zeros((self.num_envs, self.num_agents), np.float32)
        terminated = np.zeros(self.num_envs, np.bool_)
        truncated = np.zeros(self.num_envs, np.bool_)
        episodes: List[Dict[str, float]] = []
        for i, env in enumerate(self._envs):
            obs, rew, term, trunc, _ = env.step(self._actions(env, actions[i]))
            for a, agent in enumerate(self.agents_order):
                reward[i, a] = float(rew.get(agent, 0.0))
            self._ep_return[i] += reward[i]
            self._ep_length[i] += 1
            self._write(self._final_obs[i], obs, [a for a in obs if not term.get(a)], obs)   # presence 0: it left
            if env.agents:
                self._write(self._obs[i], obs, env.agents)
                continue
            ended = [agent for agent in obs if term.get(agent) or trunc.get(agent)] or list(obs)
            terminated[i] = all(bool(term.get(agent)) for agent in ended)
            truncated[i] = not terminated[i]
            episodes.append({"return": float(self._ep_return[i].mean()), "length": int(self._ep_length[i])})
            self._ep_return[i], self._ep_length[i] = 0.0, 0
            fresh, _ = env.reset()
            self._write(self._obs[i], fresh, env.agents)
        info = {"final_obs": self._final_obs.copy(), "episodes": episodes}
        return self._obs.copy(), reward, terminated, truncated, info

    def render(self) -> Any:
        """Env 0's frame (its own `render()`; make it with render_mode="rgb_array")."""
        return self._envs[0].render()

    def close(self) -> None:
        for env in self._envs:
            env.close()
