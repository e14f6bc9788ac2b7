"""A user's own env object, instead of a registry name (`srljax.train(cfg, env=...)`).

- Fused mode: a JAX env, either srljax's protocol (`srljax.envs.core.JaxEnv`: `reset(key) -> State`,
  `step(state, action) -> State`, the two spaces) or a gymnax `Environment` instance (a user's own
  subclass too), optionally as `(env, params)`. It gets the standard stack: batched, auto-reset
  keeping the final observation, episode statistics.
- Distributed mode (in one process): a factory `() -> gymnasium.Env`; srljax steps `num_envs`
  copies per env batch (`GymVectorEnv.from_factory`).
"""
from __future__ import annotations

from typing import Any

from srljax.errors import UserError


def name_of(env: Any) -> str:
    """The `env.id` a run with this env object records in its config.json."""
    inner = env[0] if isinstance(env, tuple) else env
    return f"custom/{getattr(inner, '__name__', type(inner).__name__)}"


def is_jax(env: Any) -> bool:
    from srljax.envs.core import JaxEnv
    inner = env[0] if isinstance(env, tuple) else env
    return isinstance(inner, JaxEnv) or _is_gymnax(inner)


def _is_gymnax(env: Any) -> bool:
    try:
        from gymnax.environments.environment import Environment
    except ImportError:
        return False
    return isinstance(env, Environment)


def jax_env(env: Any, num_envs: int):
    """The training stack over a user's JAX env (see the module docstring)."""
    from srljax.envs.adapters import GymnaxEnv
    from srljax.envs.core import JaxEnv, wrap_for_training

    env, params = env if isinstance(env, tuple) else (env, None)
    if isinstance(env, JaxEnv):
        base = env
    elif _is_gymnax(env):
        base = GymnaxEnv.from_env(env, params)
    else:
        raise UserError(f"env {type(env).__name__} is neither a srljax JaxEnv nor a gymnax Environment; "
                        "fused mode needs a JAX env (distributed mode takes a gymnasium env factory)")
    return wrap_for_training(base, int(num_envs))


def vector_env(factory: Any, num_envs: int, seed: int):
    """A CPU vector env of `num_envs` envs made by a user's `factory()`."""
    from srljax.envs.gymnasium_adapter import GymVectorEnv
    if not callable(factory):
        raise UserError(f"distributed mode takes an env factory (a callable returning a gymnasium env), "
                        f"got {type(factory).__name__}")
    return GymVectorEnv.from_factory(factory, num_envs, seed)
