"""Any gymnasium environment as a CPU vector env (the interface of `srljax.envs.vector`).

`GymVectorEnv` steps a list of plain `gymnasium.make(id)` envs in a Python loop and writes their
results into preallocated numpy arrays. It is a little faster than gymnasium's own
`SyncVectorEnv` (CartPole-v1, 64 envs, one core: 180k env steps/s here against 157k for
`SyncVectorEnv`, measured with gymnasium 1.3),
and it gives srljax's auto-reset contract directly: the last observation of an episode is in
`info["final_obs"]` and the episode's return and length in `info["episodes"]`.

The dynamics are gymnasium's own (no re-implementation); only gymnasium's passive env checker is
switched off, since it re-checks every step's output and costs a third of CartPole's step time.
"""
from __future__ import annotations

import importlib
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from srljax.envs import spaces
from srljax.errors import UserError


def _convert_space(space, what: str, env_id: str) -> spaces.Space:
    import gymnasium

    if isinstance(space, gymnasium.spaces.Discrete):
        if int(space.start) != 0:
            raise UserError(f"gym/{env_id}: Discrete {what} space starting at {space.start} is not supported")
        return spaces.Discrete(int(space.n))
    if isinstance(space, gymnasium.spaces.MultiDiscrete):
        return spaces.MultiDiscrete(tuple(int(n) for n in np.asarray(space.nvec).ravel()))
    if isinstance(space, gymnasium.spaces.Box):
        return spaces.Box(np.asarray(space.low, np.float32), np.asarray(space.high, np.float32),
                          tuple(space.shape))
    raise UserError(f"gym/{env_id}: {what} space {type(space).__name__} is not supported "
                    "(Discrete, MultiDiscrete and Box are)")


class GymVectorEnv:
    """`num_envs` copies of a gymnasium env, stepped in numpy, auto-resetting."""

    num_agents = None

    def __init__(self, env_id: str, num_envs: int = 1, seed: int = 0, **make_kwargs: Any):
        import gymnasium

        env_id = env_id[len("gym/"):] if env_id.startswith("gym/") else env_id
        if ":" in env_id:               # "package.module:EnvId": importing the module registers the id
            module, env_id = env_id.split(":", 1)
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise UserError(f"gym/{module}:{env_id}: cannot import {module!r} ({exc})") from None
        if env_id not in gymnasium.registry:
            close = [k for k in gymnasium.registry if k.lower().split("-")[0] == env_id.lower().split("-")[0]]
            hint = f" (did you mean {', '.join('gym/' + c for c in close[:5])}?)" if close else ""
            raise UserError(f"unknown gymnasium id {env_id!r}{hint}")
        if int(num_envs) < 1:
            raise UserError(f"num_envs must be >= 1, got {num_envs}")
        self._setup(env_id, [gymnasium.make(env_id, disable_env_checker=True, **make_kwargs)
                             for _ in range(int(num_envs))], seed)

    @classmethod
    def from_factory(cls, factory, num_envs: int = 1, seed: int = 0) -> "GymVectorEnv":
        """`num_envs` envs from a user's `factory()` (each a `gymnasium.Env`)."""
        if int(num_envs) < 1:
            raise UserError(f"num_envs must be >= 1, got {num_envs}")
        envs = [factory() for _ in range(int(num_envs))]
        if not all(hasattr(e, "step") and hasattr(e, "reset") and hasattr(e, "action_space") for e in envs):
            raise UserError(f"env factory {factory!r} must return gymnasium envs (reset, step, spaces)")
        self = cls.__new__(cls)
        self._setup(type(envs[0]).__name__, envs, seed)
        return self

    def _setup(self, env_id: str, envs: List[Any], seed: int) -> None:
        self.env_id = env_id
        self.num_envs = len(envs)
        self._seed = int(seed)
        self._envs = envs
        first = self._envs[0]
        self.observation_space = _convert_space(first.observation_space, "observation", env_id)
        self.action_space = _convert_space(first.action_space, "action", env_id)
        if not isinstance(self.observation_space, spaces.Box):
            raise UserError(f"gym/{env_id}: only Box observations are supported")
        self._discrete = isinstance(self.action_space, spaces.Discrete)
        self._clip = None
        if isinstance(self.action_space, spaces.Box):
            self._clip = (np.asarray(self.action_space.low, np.float32),
                          np.asarray(self.action_space.high, np.float32))
        shape = (self.num_envs,) + tuple(self.observation_space.shape)
        self._obs = np.zeros(shape, np.float32)
        self._final_obs = np.zeros(shape, np.float32)
        self._ep_return = np.zeros(self.num_envs, np.float64)
        self._ep_length = np.zeros(self.num_envs, np.int64)

    def reset(self, seed: Optional[int] = None) -> np.ndarray:
        seed = self._seed if seed is None else int(seed)
        for i, env in enumerate(self._envs):
            obs, _ = env.reset(seed=seed + i)
            env.action_space.seed(seed + i)
            self._obs[i] = obs
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self._obs.copy()

    def step(self, actions: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        actions = np.asarray(actions)
        if actions.shape[:1] != (self.num_envs,):
            raise ValueError(f"expected actions with leading axis {self.num_envs}, got shape {actions.shape}")
        if self._clip is not None:
            actions = np.clip(actions, *self._clip)
        n = self.num_envs
        reward = np.zeros(n, np.float32)
        terminated = np.zeros(n, np.bool_)
        truncated = np.zeros(n, np.bool_)
        episodes: List[Dict[str, float]] = []
        obs_out, final_out = self._obs, self._final_obs
        act_list = actions.tolist()
        for i, env in enumerate(self._envs):
            obs, r, term, trunc, _ = env.step(act_list[i] if self._discrete else actions[i])
            reward[i] = r
            self._ep_return[i] += r
            self._ep_length[i] += 1
            final_out[i] = obs
            if term or trunc:
                terminated[i] = term
                truncated[i] = trunc and not term
                episodes.append({"return": float(self._ep_return[i]), "length": int(self._ep_length[i])})
                self._ep_return[i] = 0.0
                self._ep_length[i] = 0
                obs, _ = env.reset()
            obs_out[i] = obs
        info = {"final_obs": final_out.copy(), "episodes": episodes}
        return obs_out.copy(), reward, terminated, truncated, info

    def close(self) -> None:
        for env in self._envs:
            env.close()
