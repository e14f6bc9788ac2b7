"""The JAX env protocol and its wrappers (fused mode).

A JAX env is a pair of pure functions, `reset(key) -> State` and `step(state, action) -> State`,
that `jit`, `vmap` and `scan` can trace. Adapters (gymnax, brax, srljax's own envs) present that
protocol; wrappers add batching, auto-reset and episode statistics:

    env = EpisodeStats(AutoReset(Batched(adapter, num_envs)))

A multi-agent JAX env sets `num_agents` (A): its observations carry an agent axis after the env
axis ([A, ...] per env), its actions too, and its reward is [A]; `done` and `truncated` stay per env
(the episode ends for all its agents together). `teams` (optional): each agent's team index.
One policy acts for every agent (`envs.jaxmarl_adapter`). Per agent, in `metrics`: `learn` [A]
(0 for a step not to learn from: an absent agent's, a scripted opponent's) and, where an agent can
end before its episode does (`agent_dones` True), `agent_done` [A]: the agent terminated on this step.

An env's own per-episode figures go in `metrics` as `episode_stat_NAME` [B]: the figure of an episode
that ended on this step (0 elsewhere); the fused loop averages them over the interval's episodes and
logs them as `episode_stat_NAME`, as it does `EpisodeStats`' team returns (`episode_return_team{k}`),
or under `episode_stats[NAME]` where the env has that mapping (a CPU game's names, as distributed
mode logs them: hide-and-seek's `stage/...`); an env's `plot_episode_stats(run_dir)` draws them
at the run's end.

Termination and truncation stay apart: `done` marks a true terminal state (no bootstrap) and
`truncated` a time limit (the learner bootstraps from the value of `final_obs`).

A rollout of n steps may draw its reset states in one go: `state, pre = env.presample(state, n)`,
then `env.step(state, action, pre[t])` at step t (`pre` is None for an env stack without
`AutoReset`; then plain `step(state, action)`). The draws are the same work as a reset per step,
in one batched call instead of n small ones: on a CPU, where each XLA op costs a fixed dispatch,
that is most of a small env batch's rollout (a threefry draw is a 5-trip loop of small ops).
"""
from __future__ import annotations

from typing import Any, Dict

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from srljax.envs.spaces import Space

EPISODE_FIGURES = ("episode_return_team", "episode_stat_")
"""Prefixes of the per-episode figures in `State.metrics` that the fused loop averages per episode."""


@struct.dataclass
class State:
    """One step of a JAX env.

    `final_obs` is the observation reached by the last action, before any auto-reset; it equals
    `obs` unless the episode ended on this step. `inner` is the adapter's own state.
    """

    obs: Any
    """The observation to act on (after an auto-reset: the new episode's first)."""
    reward: jax.Array
    """The reward of the last step."""
    done: jax.Array
    """True where the episode terminated (a terminal state: no bootstrap)."""
    truncated: jax.Array
    """True where the episode hit a time limit (the learner bootstraps from `final_obs`)."""
    final_obs: Any
    """The observation the last action reached, before any auto-reset."""
    metrics: Dict[str, jax.Array]
    """Wrappers' statistics (`EpisodeStats`: returns and lengths of ended episodes)."""
    inner: Any
    """The adapter's (or wrapped env's) own state."""


class JaxEnv:
    """Base class: subclasses implement `reset`, `step` and the two spaces."""

    observation_space: Space
    action_space: Space
    num_envs: int | None = None     # set by `Batched`
    num_agents: int | None = None   # multi-agent envs: the agent axis after the env axis
    teams: tuple | None = None      # multi-agent envs with teams: each agent's team index
    agent_dones: bool = False       # multi-agent envs whose agents can end early: metrics["agent_done"]

    def reset(self, key: jax.Array) -> State:
        """The first state of an episode; pure and traceable (`jit`, `vmap`).

        Args:
            key: a PRNG key.
        """
        raise NotImplementedError

    def step(self, state: State, action: jax.Array) -> State:
        """The state after `action`; pure and traceable. An env under `AutoReset` need not reset
        itself: `done` or `truncated` set is enough.

        Args:
            state: the current state.
            action: an action of `action_space` (batched envs: a leading env axis).
        """
        raise NotImplementedError

    def presample(self, state: State, n: int):
        """(state, draws for the next n steps, stacked on a leading axis; None: nothing to draw).

        Args:
            state: the current state.
            n: the steps of the rollout about to run.
        """
        return state, None


class Wrapper(JaxEnv):
    def __init__(self, env: JaxEnv):
        self.env = env
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self.num_envs = env.num_envs
        self.num_agents = env.num_agents
        self.teams = env.teams
        self.agent_dones = getattr(env, "agent_dones", False)

    def reset(self, key):
        return self.env.reset(key)

    def step(self, state, action, pre=None):
        return self.env.step(state, action) if pre is None else self.env.step(state, action, pre)

    def presample(self, state, n):
        return self.env.presample(state, n)

    def __getattr__(self, name):
        # Reached only when normal lookup fails: expose the wrapped env's attributes (e.g. `name`).
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)


class FloatObs(Wrapper):
    """Observations as float32 (a user's env whose observations are uint8 images, say)."""

    def reset(self, key):
        return _as_float(self.env.reset(key))

    def step(self, state, action, pre=None):
        return _as_float(super().step(state, action, pre))


def _as_float(state: State) -> State:
    cast = lambda obs: jax.tree.map(lambda x: x.astype(jnp.float32), obs)   # noqa: E731
    return state.replace(obs=cast(state.obs), final_obs=cast(state.final_obs))


class Batched(Wrapper):
    """`num_envs` independent copies under `vmap`; `reset` takes one key and splits it."""

    def __init__(self, env: JaxEnv, num_envs: int):
        super().__init__(env)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_envs = num_envs

    def reset(self, key):
        return jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))

    def step(self, state, action):
        return jax.vmap(self.env.step)(state, action)


def episode_ended(done: jax.Array, truncated: jax.Array) -> jax.Array:
    """`done | truncated`, computed once per step on a CPU.

    XLA's CPU fusion copies an elementwise flag into every fusion that reads it, and with it the
    env's end test: Acrobot's takes two cosines of the new angles, recomputed in each of
    `AutoReset`'s selects (one per state leaf) and in `EpisodeStats`' updates (57 cosines in the
    compiled step against 37 for plain gymnax). A dot is never fused into its elementwise
    consumers, so the flag is computed once here and read from memory (38 cosines; Acrobot at
    4,096 envs went from about 0.8x to 0.94-0.98x of plain gymnax). Other backends (not measured)
    keep the plain `or`.
    The sum of two 0/1 values is exact in any float type.
    """
    if jax.default_backend() != "cpu":
        return jnp.logical_or(done, truncated)
    flags = jnp.stack([done, truncated], axis=-1).astype(jnp.float32)
    return jnp.dot(flags, jnp.ones((2,), jnp.float32)) > 0.5


def _where(mask, a, b):
    """Select per env between two pytrees whose leaves have a leading env axis."""
    def sel(x, y):
        m = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim))
        return jnp.where(m, x, y)
    return jax.tree.map(sel, a, b)


class AutoReset(Wrapper):
    """Resets every env whose episode ended, keeping the last observation in `final_obs`.

    Wraps a `Batched` env. A key carried in the state gives fresh reset draws every step.
    """

    def __init__(self, env: JaxEnv):
        if not isinstance(env, Batched):
            raise TypeError("AutoReset wraps a Batched env")
        super().__init__(env)

    def reset(self, key):
        key, sub = jax.random.split(key)
        state = self.env.reset(sub)
        return state.replace(inner=(state.inner, key))

    def presample(self, state, n):
        """Fresh reset states for the next n steps, [n, B, ...], from one split of the state's key."""
        inner, key = state.inner
        key, sub = jax.random.split(key)
        fresh = jax.vmap(self.env.reset)(jax.random.split(sub, n))
        return state.replace(inner=(inner, key)), fresh

    def step(self, state, action, pre=None):
        """`pre`: a reset state drawn by `presample` (else one is drawn here)."""
        inner, key = state.inner
        stepped = self.env.step(state.replace(inner=inner), action)
        if pre is None:
            key, sub = jax.random.split(key)
            fresh = self.env.reset(sub)
        else:
            fresh = pre
        ended = episode_ended(stepped.done, stepped.truncated)
        obs = _where(ended, fresh.obs, stepped.obs)
        new_inner = _where(ended, fresh.inner, stepped.inner)
        return stepped.replace(obs=obs, final_obs=stepped.obs, inner=(new_inner, key))


class EpisodeStats(Wrapper):
    """Adds per-env running episode return and length, and the figures of episodes that ended.

    `metrics["episode_return"]` and `["episode_length"]` hold the totals of the episode that ended
    on this step (zero elsewhere); `metrics["episode_ended"]` flags those envs. A multi-agent env's
    return is the mean over its agents of their summed rewards, and with `teams`,
    `metrics["episode_return_team{k}"]` the mean over team k's agents. The env's own metrics (a
    multi-agent env's `learn` mask) pass through.
    """

    def reset(self, key):
        state = self.env.reset(key)
        ret = jnp.zeros_like(state.reward)                      # [B] or [B, A]
        length = jnp.zeros(state.done.shape, jnp.float32)       # [B]
        return state.replace(inner=(state.inner, (ret, length)),
                             metrics={**state.metrics, **self._metrics(ret, length, length)})

    def presample(self, state, n):
        inner, running = state.inner
        state, pre = self.env.presample(state.replace(inner=inner), n)
        return state.replace(inner=(state.inner, running)), pre

    def step(self, state, action, pre=None):
        inner, (ret, length) = state.inner
        stepped = super().step(state.replace(inner=inner), action, pre)
        ret = ret + stepped.reward
        length = length + 1.0
        ended = episode_ended(stepped.done, stepped.truncated).astype(jnp.float32)
        per_agent = ended[..., None] if ret.ndim > ended.ndim else ended
        metrics = {**stepped.metrics, **self._metrics(ret * per_agent, length * ended, ended)}
        return stepped.replace(inner=(stepped.inner, (ret * (1.0 - per_agent), length * (1.0 - ended))),
                               metrics=metrics)

    def _metrics(self, ret, length, ended):
        out = {"episode_return": ret, "episode_length": length, "episode_ended": ended}
        if ret.ndim > ended.ndim:                     # [B, A]: the mean over agents, and per team
            out["episode_return"] = jnp.mean(ret, axis=-1)
            for k in sorted(set(self.teams or ())):
                members = np.array([t == k for t in self.teams], np.float32)
                out[f"episode_return_team{k}"] = ret @ members / members.sum()
        return out


def wrap_for_training(env: JaxEnv, num_envs: int) -> JaxEnv:
    """The standard stack: batched, auto-reset (final observation kept), episode statistics."""
    return EpisodeStats(AutoReset(Batched(env, num_envs)))
