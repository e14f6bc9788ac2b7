"""Adapters that present gymnax and brax environments through srljax's JAX env protocol."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from srljax.envs.core import JaxEnv, State
from srljax.envs.deferred import import_gymnax
from srljax.envs.space_check import convert
from srljax.envs.spaces import Box, Entities, WorldState
from srljax.errors import UserError


def _first_state(obs, inner, reward_dtype=jnp.float32) -> State:
    false = jnp.zeros((), jnp.bool_)
    return State(obs=obs, reward=jnp.zeros((), reward_dtype), done=false, truncated=false,
                 final_obs=obs, metrics={}, inner=inner)


class GymnaxEnv(JaxEnv):
    """A gymnax environment. gymnax's own auto-reset is bypassed (srljax's `AutoReset` does it)."""

    def __init__(self, name: str, **param_overrides):
        env, params = import_gymnax().make(name)
        self._setup(f"gymnax/{name}", env, params.replace(**param_overrides) if param_overrides else params)

    @classmethod
    def from_env(cls, env, params=None, name=None) -> "GymnaxEnv":
        """A gymnax `Environment` instance (a user's own class too) with `params` (default its own);
        `name`: what its messages call it (default custom/CLASS)."""
        self = cls.__new__(cls)
        self._setup(name or f"custom/{type(env).__name__}", env, env.default_params if params is None else params)
        return self

    def _setup(self, name: str, env, params) -> None:
        self.name, self._env, self._params = name, env, params
        # the spaces first (`space_check`: one line for a space srljax does not drive), then the trace
        obs_space = self._env.observation_space(self._params)
        self.observation_space = float_space(convert(obs_space, "observation", name, nested=True))
        self._float = as_float(obs_space)      # float32; a Discrete one-hot (FrozenLake); Dicts leaf by leaf
        self.action_space = convert(self._env.action_space(self._params), "action", name)
        self._draws = _step_draws(env, params)

    # The adapter's state is (gymnax state, episode key, step count) for an env whose `step_env`
    # draws random numbers: the episode key is the reset's own key, and step t of the episode
    # draws with fold_in(episode key, STEP_STREAM + t). The reset's draws hash the same key with
    # the counters 0, 1, ... of its arrays, the steps with counters from 2^31 on: distinct inputs
    # to the hash, so independent numbers, without a split of the reset key (a threefry hash per
    # env per step, since auto-reset draws a reset state for every env at every step; Acrobot's
    # torque noise is such a draw). An env whose dynamics draw none (CartPole, MountainCar,
    # Pendulum, ...: found by tracing `step_env` once, `_step_draws`) keeps (gymnax state,) alone:
    # no key to carry (18% of CartPole's step at 65,536 envs on a CPU).
    def reset(self, key):
        obs, inner = self._env.reset_env(key, self._params)
        if not self._draws:
            return _first_state(self._float(obs), (inner,))
        return _first_state(self._float(obs), (inner, key, jnp.zeros((), jnp.int32)))

    def step(self, state, action):
        if self._draws:
            inner, key, t = state.inner
            sub = jax.random.fold_in(key, STEP_STREAM + t.astype(jnp.uint32))
        else:
            (inner,), sub = state.inner, jax.random.PRNGKey(0)     # read by nothing: compiled away
        obs, inner, reward, terminated, _ = self._env.step_env(sub, inner, action, self._params)
        terminated = jnp.asarray(terminated, jnp.bool_)
        truncated = jnp.logical_and(self._env.is_truncated(inner, self._params), ~terminated)
        obs = self._float(obs)
        carried = (inner, key, t + 1) if self._draws else (inner,)
        return state.replace(obs=obs, final_obs=obs, reward=jnp.asarray(reward, jnp.float32),
                             done=terminated, truncated=truncated, inner=carried)


def float_space(space):
    """The space of the float32 observations an adapter hands the learner (dicts leaf by leaf)."""
    if isinstance(space, dict):
        out = {k: float_space(v) for k, v in space.items()}
        return type(space)(out) if isinstance(space, (Entities, WorldState)) else out
    return Box(low=-np.inf, high=np.inf, shape=space.shape)


def as_float(space):
    """The traceable function that turns a gymnax env's observations of `space` into float32 ones:
    a Discrete one-hot, a Dict leaf by leaf (by its keys), anything else cast."""
    kind = type(space).__name__
    if kind == "Dict":
        casts = {k: as_float(v) for k, v in space.spaces.items()}
        return lambda obs: {k: cast(obs[k]) for k, cast in casts.items()}
    if kind == "Discrete":
        n = int(space.n)
        return lambda obs: jax.nn.one_hot(obs, n, dtype=jnp.float32)
    return lambda obs: jnp.asarray(obs).astype(jnp.float32)


STEP_STREAM = np.uint32(2 ** 31)
"""Offset of the step counters folded into an episode key (above any counter a reset draws)."""


def _step_draws(env, params) -> bool:
    """Whether a gymnax env's `step_env` reads its key: its traced program, walked back from the
    outputs (conservative: an equation any of whose outputs is needed needs all of its inputs)."""
    key = jax.random.PRNGKey(0)
    _, state = env.reset_env(key, params)
    action = env.action_space(params).sample(key)
    jaxpr = jax.make_jaxpr(lambda k: env.step_env(k, state, action, params))(key).jaxpr
    is_var = lambda v: type(v).__name__ != "Literal"   # noqa: E731
    needed = {v for v in jaxpr.outvars if is_var(v)}
    for eqn in reversed(jaxpr.eqns):
        if any(is_var(o) and o in needed for o in eqn.outvars):
            needed.update(v for v in eqn.invars if is_var(v))
    return jaxpr.invars[0] in needed


# Brax backends that run fastest on a CPU for each env, measured with brax 0.14 (the same choice
# as brax's own training examples make); any env may override it with `backend=...`.
_BRAX_DEFAULT_BACKEND = {"inverted_pendulum": "generalized", "inverted_double_pendulum": "generalized"}


class BraxEnv(JaxEnv):
    """A brax environment with a time limit of `episode_length` steps (a truncation).

    Observations are brax's: an array, or a dict of arrays (nested too) for an env that returns one,
    given an MLP over its flattened leaves. The dict `{"state", "privileged_state"}` (MuJoCo
    Playground's asymmetric actor-critic) becomes a `spaces.WorldState`: the policy reads `state`,
    the critic `privileged_state`.
    """

    def __init__(self, name: str, episode_length: int = 1000, backend: str | None = None, **kwargs):
        from brax import envs as brax_envs

        self.name = f"brax/{name}"
        backend = backend or _BRAX_DEFAULT_BACKEND.get(name, "spring")
        self._env = brax_envs.get_environment(name, backend=backend, **kwargs)
        self.episode_length = int(episode_length)
        # the reset's shapes, traced: brax's own `observation_size` runs a reset op by op (7 s for
        # inverted_pendulum on a CPU, against 0.2 s traced)
        obs = jax.eval_shape(self._env.reset, jax.random.PRNGKey(0)).obs
        self._asymmetric = isinstance(obs, dict) and set(obs) == set(_BRAX_ASYMMETRIC)
        self.observation_space = _brax_space(obs, self.name)
        self.action_space = Box(low=-1.0, high=1.0, shape=(self._env.action_size,))

    def _obs(self, obs):
        if self._asymmetric:
            return {new: jnp.asarray(obs[old], jnp.float32) for new, old in zip(("obs", "state"), _BRAX_ASYMMETRIC)}
        return jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), obs)

    @property
    def system(self):
        """brax's `System` (what `brax.io.image` draws)."""
        return self._env.sys

    def reset(self, key):
        inner = self._env.reset(key)
        return _first_state(self._obs(inner.obs), (inner, jnp.zeros((), jnp.int32)))

    def step(self, state, action):
        inner, t = state.inner
        inner = self._env.step(inner, jnp.clip(action, -1.0, 1.0))
        t = t + 1
        done = jnp.asarray(inner.done, jnp.float32) > 0.5
        truncated = jnp.logical_and(t >= self.episode_length, ~done)
        obs = self._obs(inner.obs)
        return state.replace(obs=obs, final_obs=obs, reward=jnp.asarray(inner.reward, jnp.float32),
                             done=done, truncated=truncated, inner=(inner, t))


_BRAX_ASYMMETRIC = ("state", "privileged_state")
"""A brax dict observation of these keys: the actor's and the critic's (MuJoCo Playground's convention)."""


def _brax_space(obs, name):
    """The observation space of a brax env's traced observation (an array, or a dict of them)."""
    if isinstance(obs, dict):
        if not obs:
            raise UserError(f"env {name}: its observation is an empty dict")
        if set(obs) == set(_BRAX_ASYMMETRIC):
            return WorldState({new: _brax_space(obs[old], name) for new, old in zip(("obs", "state"), _BRAX_ASYMMETRIC)})
        return {str(k): _brax_space(v, name) for k, v in obs.items()}
    shape = getattr(obs, "shape", None)
    if shape is None or len(shape) == 0:
        raise UserError(f"env {name}: an observation leaf of {type(obs).__name__} {shape}: srljax drives arrays "
                        "of rank >= 1 and dicts of them")
    return Box(low=-np.inf, high=np.inf, shape=tuple(shape))
