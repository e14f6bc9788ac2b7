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
- `random_opponents=p` (two-team games): in a fraction p of episodes one team, drawn at random,
  plays uniformly random actions instead of the policy's, and its steps are not learned from
  (`metrics["learn"]` is 0 for its agents; the fused rollout hands it to the learner as `learn`),
  as `distributed.random_opponents` does for CPU games: self-play alone fits each team to the
  other's habits only;
- `world_state=True`: a centralised critic (MAPPO): the observation becomes a
  `spaces.WorldState`, `obs` the agent's own and `state` the env's global state where it gives one
  (SMAX's `world_state` observation entry), else every agent's observation concatenated, followed
  by a one-hot of the agent whose value it is; only the critic reads `state`;
- per-agent ends (`agent_dones`, on by default for SMAX): an agent whose own `dones[agent]` turns
  true before its episode ends (a SMAX unit killed) terminates there, its value not bootstrapped
  (`metrics["agent_done"]`), and its later steps of that episode are not learned from
  (`metrics["learn"]` 0: it is absent). An episode end at the step limit with every agent done
  (MPE's) stays a truncation;
- `scenario="3m"` (SMAX family): a SMAX map name, looked up in JaxMARL's scenario table;
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


OPPONENT_STREAM = np.uint32(2 ** 30)
"""Folded into an episode's reset key to draw its random-opponent team (apart from the reset's own draws)."""


class JaxMARLEnv(JaxEnv):
    """A JaxMARL `MultiAgentEnv` as srljax's multi-agent JAX env (see the module docstring)."""

    def __init__(self, name: str, agent_ids: bool = False, teams: Optional[Tuple[int, ...]] = None,
                 world_state: bool = False, random_opponents: float = 0.0,
                 agent_dones: Optional[bool] = None, **kwargs):
        jaxmarl = _import_jaxmarl()
        if isinstance(kwargs.get("scenario"), str):
            kwargs["scenario"] = _smax_scenario(name, kwargs["scenario"])
        env = jaxmarl.make(name, **kwargs)      # the name is checked first (`registry.check_name`)
        self._setup(f"jaxmarl/{name}", env, agent_ids, teams, world_state)
        self.agent_dones = ("SMAX" in name) if agent_dones is None else bool(agent_dones)
        self._opponents(float(random_opponents))

    def _setup(self, name, env, agent_ids, teams, world_state) -> None:
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
        if self._world:      # the critic's global state: the env's own, or every agent's observation
            own_state = _world_state_width(env)
            width = A * int(np.prod(shape, dtype=np.int64)) if own_state is None else own_state
            self._env_world = own_state is not None
            world = Box(low=-np.inf, high=np.inf, shape=(width + A,))       # + whose value: one-hot
            self.observation_space = WorldState({"obs": own, "state": world})
        else:
            self.observation_space = own
        self.max_steps = getattr(env, "max_steps", None)

    def _opponents(self, p: float) -> None:
        self.random_opponents = p
        if p == 0.0:
            return
        if not 0.0 < p <= 1.0:
            raise UserError(f"env {self.name}: random_opponents must be in [0, 1], got {p}")
        if self.teams is None or len(set(self.teams)) != 2:
            raise UserError(f"env {self.name}: random_opponents needs a two-team game; its agents "
                            f"{', '.join(self.agents[:4])} are {'one team' if self.teams is None else 'more teams'}")
        space = self.action_space
        if isinstance(space, Box) and not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise UserError(f"env {self.name}: random_opponents draws uniform actions, which needs finite bounds")
        self._team_of = jnp.asarray(self.teams)

    def _random_actions(self, key):
        space, A = self.action_space, self.num_agents
        if isinstance(space, Box):
            return jax.random.uniform(key, (A,) + tuple(space.shape), minval=jnp.asarray(space.low),
                                      maxval=jnp.asarray(space.high))
        if hasattr(space, "nvec"):
            return jax.random.randint(key, (A, len(space.nvec)), 0, jnp.asarray(space.nvec))
        return jax.random.randint(key, (A,), 0, space.n)

    def _draw_opponent(self, key):
        """The team playing random actions this episode, or -1 (each of the two equally likely)."""
        k1, k2 = jax.random.split(jax.random.fold_in(key, OPPONENT_STREAM))
        return jnp.where(jax.random.uniform(k1) < self.random_opponents, jax.random.randint(k2, (), 0, 2), -1)

    @property
    def drawable(self) -> bool:
        """Whether `draw` can picture this env (JaxMARL's MPE: entity positions, radii, colours)."""
        return all(hasattr(self._env, a) for a in ("colour", "rad", "num_entities"))

    def draw(self, inner, size: int = 240, extent: float = 2.0) -> np.ndarray:
        """An RGB picture [size, size, 3] of one env from this adapter's state (unbatched): MPE's
        landmarks, then its agents, as discs in their colours over the square [-extent, extent]^2."""
        pos = np.asarray(inner[0].p_pos, np.float64)
        rad = np.broadcast_to(np.asarray(self._env.rad, np.float64), (len(pos),))
        colours = np.clip(np.asarray(self._env.colour, np.float64), 0, 255).astype(np.uint8)
        img = np.full((size, size, 3), 255, np.uint8)
        scale = size / (2.0 * extent)
        yy, xx = np.mgrid[0:size, 0:size]
        order = list(range(self.num_agents, len(pos))) + list(range(self.num_agents))     # agents on top
        for i in order:
            cx, cy = (pos[i, 0] + extent) * scale, (extent - pos[i, 1]) * scale
            img[(xx - cx) ** 2 + (yy - cy) ** 2 <= max(rad[i] * scale, 2.0) ** 2] = colours[i]
        return img

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
        A = self.num_agents
        world = jnp.asarray(obs["world_state"], jnp.float32).reshape(-1) if self._env_world else out.reshape(-1)
        world = jnp.concatenate([jnp.broadcast_to(world, (A, world.size)), jnp.eye(A, dtype=jnp.float32)], axis=1)
        return {"obs": out, "state": world}

    # The adapter's state: (JaxMARL's state, the episode's key, step count[, agents present [A]]
    # with `agent_dones`][, the random-opponent team with `random_opponents`]).
    def reset(self, key):
        obs, inner = self._env.reset(key)
        A = self.num_agents
        carried = (inner, key, jnp.zeros((), jnp.int32))
        present = jnp.ones((A,), jnp.bool_)
        if self.agent_dones:
            carried += (present,)
        first = _first_state(self._obs(obs), carried).replace(reward=jnp.zeros((A,), jnp.float32))
        opp = None
        if self.random_opponents:
            opp = self._draw_opponent(key)
            carried += (opp,)
        return first.replace(inner=carried, metrics=self._metrics(opp, present, jnp.zeros((A,), jnp.bool_)))

    def _metrics(self, opp, present, agent_done):
        """`learn` [A] (0: not learned from: a random opponent's step, an absent agent's) and
        `agent_done` [A], as the options ask for."""
        out = {}
        if self.agent_dones:
            out["agent_done"] = agent_done
        if self.random_opponents or self.agent_dones:
            learn = present if opp is None else present & (self._team_of != opp)
            out["learn"] = learn.astype(jnp.float32)
        return out

    def step(self, state, action):
        inner, key, t = state.inner[:3]
        rest = state.inner[3:]
        present = rest[0] if self.agent_dones else jnp.ones((self.num_agents,), jnp.bool_)
        opp = rest[-1] if self.random_opponents else None
        sub = jax.random.fold_in(key, STEP_STREAM + t.astype(jnp.uint32))
        if self.random_opponents:
            sub, k = jax.random.split(sub)
            action = jnp.where((self._team_of == opp).reshape((-1,) + (1,) * (action.ndim - 1)),
                               self._random_actions(k).astype(action.dtype), action)
        actions = {a: action[i] for i, a in enumerate(self.agents)}
        obs, inner, reward, dones, _ = self._env.step_env(sub, inner, actions)
        ended = jnp.asarray(dones["__all__"], jnp.bool_)
        limit = _step_count(inner)
        if self.max_steps is not None and limit is not None:
            truncated = ended & (limit >= self.max_steps)
        else:
            truncated = jnp.zeros((), jnp.bool_)
        gone = jnp.stack([jnp.asarray(dones[a], jnp.bool_) for a in self.agents])
        # an agent's own end, unless the episode's end at the step limit set every agent's (MPE)
        agent_done = present & gone & ~(truncated & jnp.all(gone))
        carried = (inner, key, t + 1) + ((present & ~gone,) if self.agent_dones else ()) + (
            (opp,) if self.random_opponents else ())
        obs = self._obs(obs)
        reward = jnp.stack([jnp.asarray(reward[a], jnp.float32) for a in self.agents])
        return state.replace(obs=obs, final_obs=obs, reward=reward, done=ended & ~truncated, truncated=truncated,
                             inner=carried, metrics=self._metrics(opp, present, agent_done))


def _step_count(inner):
    """JaxMARL's step counter in its state (`state.step`; SMAX's enemy-policy envs nest it in `state.state`)."""
    for s in (inner, getattr(inner, "state", None)):
        if s is not None and hasattr(s, "step"):
            return s.step
    return None


def _world_state_width(env) -> Optional[int]:
    """The width of the env's own global state (SMAX: its observations' `world_state` entry), or None."""
    try:
        obs, _ = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    except Exception:           # noqa: BLE001: an env whose reset cannot be traced here gets concatenation
        return None
    ws = obs.get("world_state") if isinstance(obs, dict) else None
    return None if ws is None else int(np.prod(ws.shape, dtype=np.int64))


def _smax_scenario(name: str, map_name: str):
    """JaxMARL's SMAX scenario for a map name (`scenario="3m"`), or one line naming the known ones."""
    if "SMAX" not in name:
        raise UserError(f"env jaxmarl/{name}: scenario={map_name!r} names a SMAX map, and {name} is not a SMAX env")
    from jaxmarl.environments.smax import smax_env
    known = smax_env.MAP_NAME_TO_SCENARIO
    if map_name not in known:
        raise UserError(f"env jaxmarl/{name}: unknown SMAX scenario {map_name!r}; known: {', '.join(sorted(known))}")
    return known[map_name]
