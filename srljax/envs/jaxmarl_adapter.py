"""JaxMARL's multi-agent JAX envs (`jaxmarl/NAME`, e.g. `jaxmarl/MPE_simple_spread_v3`) in fused mode.

A multi-agent JAX env (`envs.core.JaxEnv` with `num_agents` set) puts an agent axis after the env
axis: observations [A, ...] per env ([B, A, ...] batched), actions [A, ...], rewards [A]; `done` and
`truncated` stay per env (the episode ends for every agent together). All agents act through one
shared policy, and the learner takes each (env, agent) pair as a column
(`learners.recurrent.merge_agents`); `EpisodeStats` reports an episode's return as the mean over
agents of their summed rewards, and per team where the env declares `teams`.

The adapter:
- stacks JaxMARL's per-agent dicts in `env.agents` order; every agent must have the same action
  space (one policy); observations of different shapes are flattened and zero-padded to the widest;
  `agent_ids=True` appends a one-hot agent index (for envs whose observations do not say which
  agent is which);
- teams: agents named PREFIX_i with more than one PREFIX (MPE simple_tag's `adversary_*` and
  `agent_*`) are teams in the order the prefixes first appear (or `teams=` gives each agent's);
  the observation then ends in a one-hot of the agent's team, so one set of weights plays every
  team (self-play), and the episode statistics report each team's return;
- steps `step_env` (JaxMARL's own auto-reset bypassed: srljax's `AutoReset` keeps the final
  observation) with a key folded from the episode's key and the step count, as `GymnaxEnv` does;
- `world_state=True`: a centralised critic (MAPPO): the observation becomes a
  `spaces.WorldState`, `obs` the agent's own and `state` every agent's concatenated (the same for
  all agents), which only the critic reads;
- calls an episode end at the env's step limit (`state.step >= env.max_steps`, as JaxMARL's MPE
  and most of its envs end) a truncation, bootstrapped; any other end a termination.
"""
from __future__ import annotations

import sys
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from srljax.envs.adapters import STEP_STREAM, as_float, _first_state
from srljax.envs.core import JaxEnv
from srljax.envs.space_check import convert, describe
from srljax.envs.spaces import Box, WorldState
from srljax.errors import UserError


def _import_jaxmarl():
    """jaxmarl, imported without the lines its package prints on stdout (the command's own output):
    file descriptor 1 points at /dev/null meanwhile (a redirect of `sys.stdout` does not catch
    them: an import on the way swaps the stream)."""
    import os
    if "jaxmarl" in sys.modules:
        return sys.modules["jaxmarl"]
    sys.stdout.flush()
    saved, null = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    try:
        import jaxmarl
        sys.stdout.flush()
        sys.__stdout__.flush()
    except ImportError:
        raise UserError("jaxmarl/ envs need the jaxmarl package: pip install jaxmarl") from None
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    return jaxmarl


class JaxMARLEnv(JaxEnv):
    """A JaxMARL `MultiAgentEnv` as srljax's multi-agent JAX env (see the module docstring)."""

    def __init__(self, name: str, agent_ids: bool = False, teams: Optional[Tuple[int, ...]] = None,
                 world_state: bool = False, **kwargs):
        jaxmarl = _import_jaxmarl()
        env = jaxmarl.make(name, **kwargs)      # the name is checked first (`registry.check_name`)
        self._setup(f"jaxmarl/{name}", env, agent_ids, teams, world_state)

    @classmethod
    def from_env(cls, env, name: Optional[str] = None, agent_ids: bool = False, teams=None,
                 world_state: bool = False) -> "JaxMARLEnv":
        """A JaxMARL `MultiAgentEnv` instance (a user's own subclass too)."""
        self = cls.__new__(cls)
        self._setup(name or f"custom/{type(env).__name__}", env, agent_ids, teams, world_state)
        return self

    def _setup(self, name, env, agent_ids, teams, world_state=False) -> None:
        self.name, self._env = name, env
        self.agents = tuple(env.agents)
        A = self.num_agents = len(self.agents)
        acts = [convert(env.action_space(a), f"agent {a}'s action", name) for a in self.agents]
        if any(a != acts[0] for a in acts[1:]):
            differ = ", ".join(f"{a}: {describe(env.action_space(a))}" for a in self.agents[:4])
            raise UserError(f"env {name}: agents have different action spaces ({differ}); srljax's one shared "
                            "policy needs one action space for all agents")
        self.action_space = acts[0]
        spaces = [env.observation_space(a) for a in self.agents]
        shapes = [tuple(convert(s, f"agent {a}'s observation", name).shape) for a, s in zip(self.agents, spaces)]
        self._casts = [as_float(s) for s in spaces]
        if teams is None:
            prefixes = [a.rsplit("_", 1)[0] for a in self.agents]
            order = list(dict.fromkeys(prefixes))
            teams = tuple(order.index(p) for p in prefixes) if len(order) > 1 else None
        self.teams = None if teams is None else tuple(int(t) for t in teams)
        if self.teams is not None and len(self.teams) != A:
            raise UserError(f"env {name}: teams gives {len(self.teams)} entries for {A} agents")
        extra = []                                       # columns appended to every agent's observation
        if agent_ids:
            extra.append(np.eye(A, dtype=np.float32))
        if self.teams is not None:
            extra.append(np.eye(max(self.teams) + 1, dtype=np.float32)[list(self.teams)])
        self._extra = np.concatenate(extra, axis=1) if extra else None
        self._flat = self._extra is not None or len(set(shapes)) > 1
        width = max(int(np.prod(s, dtype=np.int64)) for s in shapes)
        self._width = width
        shape = (width + (0 if self._extra is None else self._extra.shape[1]),) if self._flat else shapes[0]
        own = Box(low=-np.inf, high=np.inf, shape=shape)
        self._world = bool(world_state)
        if self._world:           # the critic's global state: every agent's observation, concatenated
            world = Box(low=-np.inf, high=np.inf, shape=(A * int(np.prod(shape, dtype=np.int64)),))
            self.observation_space = WorldState({"obs": own, "state": world})
        else:
            self.observation_space = own
        self.max_steps = getattr(env, "max_steps", None)

    def _obs(self, obs: dict):
        rows = [cast(obs[a]) for cast, a in zip(self._casts, self.agents)]
        if not self._flat:
            out = jnp.stack(rows)
        else:
            rows = [jnp.pad(r.reshape(-1), (0, self._width - r.size)) for r in rows]
            out = jnp.stack(rows)
            out = out if self._extra is None else jnp.concatenate([out, jnp.asarray(self._extra)], axis=-1)
        if not self._world:
            return out
        world = jnp.broadcast_to(out.reshape(-1), (self.num_agents, out.size))
        return {"obs": out, "state": world}

    def reset(self, key):
        obs, inner = self._env.reset(key)
        first = _first_state(self._obs(obs), (inner, key, jnp.zeros((), jnp.int32)))
        return first.replace(reward=jnp.zeros((self.num_agents,), jnp.float32))

    def step(self, state, action):
        inner, key, t = state.inner
        sub = jax.random.fold_in(key, STEP_STREAM + t.astype(jnp.uint32))
        actions = {a: action[i] for i, a in enumerate(self.agents)}
        obs, inner, reward, dones, _ = self._env.step_env(sub, inner, actions)
        ended = jnp.asarray(dones["__all__"], jnp.bool_)
        limit = getattr(inner, "step", None)
        if self.max_steps is not None and limit is not None:
            truncated = ended & (limit >= self.max_steps)
        else:
            truncated = jnp.zeros((), jnp.bool_)
        obs = self._obs(obs)
        reward = jnp.stack([jnp.asarray(reward[a], jnp.float32) for a in self.agents])
        return state.replace(obs=obs, final_obs=obs, reward=reward, done=ended & ~truncated, truncated=truncated,
                             inner=(inner, key, t + 1))
