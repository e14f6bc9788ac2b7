"""A user's own env object, instead of a registry name (`srljax.train(cfg, env=...)`, `make_env(obj)`).

- Fused mode: a JAX env, either srljax's protocol (`srljax.envs.core.JaxEnv`: `reset(key) -> State`,
  `step(state, action) -> State`, the two spaces) or a gymnax `Environment` instance (a user's own
  subclass too), optionally as `(env, params)`. It gets the standard stack: batched, auto-reset
  keeping the final observation, episode statistics.
- Distributed mode (in one process):
  - a factory `() -> gymnasium.Env`: srljax steps `num_envs` copies per env batch
    (`GymVectorEnv.from_factory`);
  - a factory `() -> pettingzoo.ParallelEnv`: `num_envs` copies, one shared policy for the agents
    (`PettingZooVectorEnv`);
  - any `gymnasium.vector.VectorEnv` object (`gymnasium.make_vec(...)`, `SyncVectorEnv([...])`, a
    wrapped one): it is the run's one env batch, so the run takes `env.num_envs` from it and runs
    one actor with one env batch (`fixed_settings`); its autoreset mode is read from its metadata
    (`gymnasium_vector.FromGymnasium`). srljax does not close it.
"""
from __future__ import annotations

import sys
from typing import Any, Dict

from srljax.errors import UserError


def name_of(env: Any) -> str:
    """The `env.id` a run with this env object records in its config.json."""
    inner = env[0] if isinstance(env, tuple) else env
    spec_id = getattr(getattr(inner, "spec", None), "id", None) if is_vector(inner) else None
    return f"custom/{spec_id or getattr(inner, '__name__', type(inner).__name__)}"


def is_jax(env: Any) -> bool:
    from srljax.envs.core import JaxEnv
    inner = env[0] if isinstance(env, tuple) else env
    return isinstance(inner, JaxEnv) or _is_gymnax(inner)


def is_vector(env: Any) -> bool:
    """A gymnasium VectorEnv object."""
    import gymnasium
    return isinstance(env, gymnasium.vector.VectorEnv)


def is_cpu(env: Any) -> bool:
    """What distributed mode takes: a VectorEnv object or an env factory."""
    return is_vector(env) or (callable(env) and not is_jax(env))


def is_parallel(env: Any) -> bool:
    """A PettingZoo ParallelEnv (by its interface: pettingzoo need not be installed to check)."""
    return hasattr(env, "possible_agents") and callable(getattr(env, "observation_space", None)) \
        and hasattr(env, "step") and not is_vector(env)


def fixed_settings(env: Any) -> Dict[str, Any]:
    """The config a run with this env object must use (a VectorEnv object is one env batch)."""
    if not is_vector(env):
        return {}
    return {"env.num_envs": int(env.num_envs), "distributed.ring_size": 1, "distributed.actors": 1}


def _is_gymnax(env: Any) -> bool:
    if "gymnax" not in sys.modules:      # a gymnax env object means its user imported gymnax
        return False
    from gymnax.environments.environment import Environment
    return isinstance(env, Environment)


def jax_env(env: Any, num_envs: int):
    """The training stack over a user's JAX env (see the module docstring)."""
    from srljax.envs.adapters import GymnaxEnv
    from srljax.envs.core import JaxEnv, wrap_for_training

    name = name_of(env)
    env, params = env if isinstance(env, tuple) else (env, None)
    if isinstance(env, JaxEnv):
        base = checked_jax_env(env, name)
    elif _is_gymnax(env):
        base = GymnaxEnv.from_env(env, params)
    else:
        raise UserError(f"env {type(env).__name__} is neither a srljax JaxEnv nor a gymnax Environment; "
                        "fused mode needs a JAX env (distributed mode takes a gymnasium VectorEnv or env factory)")
    return wrap_for_training(base, int(num_envs))


def checked_jax_env(env, name: str):
    """A user's `JaxEnv` with its spaces checked (`space_check.convert`; one line for a space srljax
    does not drive), its reset's observation checked against its observation space (shapes only:
    `jax.eval_shape`), and observations of another dtype (uint8 images, say) cast to float32."""
    import jax

    from srljax.envs.core import FloatObs
    from srljax.envs.space_check import action_offset, convert, refusal
    def leaves(space):
        return [s for v in space.values() for s in leaves(v)] if isinstance(space, dict) else [space]

    for space in leaves(env.observation_space):
        if type(space).__name__ in ("Discrete", "MultiDiscrete"):
            raise refusal(name, "observation", env.observation_space, "a JaxEnv's observations reach the learner "
                          "as its reset and step return them: declare the Box they lie in")
    obs_space = convert(env.observation_space, "observation", name, nested=True)
    convert(env.action_space, "action", name)
    if action_offset(env.action_space) is not None:
        raise refusal(name, "action", env.action_space, "a JaxEnv's step gets the policy's actions in [0, n): "
                      "declare srljax's Discrete(n) and add the start in step")
    obs = jax.eval_shape(env.reset, jax.random.PRNGKey(0)).obs
    agents = (int(env.num_agents),) if getattr(env, "num_agents", None) else ()      # multi-agent: [A, ...]
    want, got = _shapes(obs_space, agents), _shapes(obs)
    if want != got:
        raise UserError(f"env {name}: reset returns observations of {_say_shapes(got)}, its observation_space "
                        f"has {_say_shapes(want)}")
    return env if all(x.dtype == jax.numpy.float32 for x in jax.tree.leaves(obs)) else FloatObs(env)


def _shapes(tree, lead=()):
    """Shapes of an observation (or of a space's Boxes, with leading axes `lead`), nested as the
    dicts are; a leaf that is neither an array nor a space: its type's name."""
    if isinstance(tree, dict):
        return {k: _shapes(v, lead) for k, v in tree.items()}
    return tuple(lead) + tuple(tree.shape) if hasattr(tree, "shape") else type(tree).__name__


def _say_shapes(shapes) -> str:
    if isinstance(shapes, dict):
        return "a dict {" + ", ".join(f"{k!r}: {_say_shapes(v)}" for k, v in sorted(shapes.items())) + "}"
    return f"shape {shapes}" if isinstance(shapes, tuple) else shapes


def user_env(obj: Any, num_envs: int, seed: int):
    """The env a user's object makes, as the user would step it: a VectorEnv object itself, a
    gymnasium env factory's `GymVectorEnv` (a gymnasium VectorEnv), a PettingZoo factory's
    `PettingZooVectorEnv` (srljax's multi-agent vector env)."""
    if is_vector(obj):
        return obj
    if not callable(obj):
        raise UserError(f"env {type(obj).__name__} is not a JAX env (srljax JaxEnv, gymnax Environment), a "
                        "gymnasium VectorEnv, nor a factory of gymnasium or PettingZoo envs")
    first = obj()
    if is_vector(first):
        first.close()
        raise UserError("the env factory returned a gymnasium VectorEnv: pass that VectorEnv itself as env=")
    if is_parallel(first):
        from srljax.envs.pettingzoo_adapter import PettingZooVectorEnv
        return PettingZooVectorEnv.from_factory(obj, num_envs, seed, first=first)
    from srljax.envs.gymnasium_adapter import GymVectorEnv
    return GymVectorEnv.from_factory(obj, num_envs, seed, first=first)


def vector_env(obj: Any, num_envs: int, seed: int):
    """srljax's own vector env (`envs.vector`) over a user's object (see `user_env`)."""
    from srljax.envs.gymnasium_vector import FromGymnasium, as_srljax
    if is_vector(obj):
        return FromGymnasium(obj, owned=False)
    return as_srljax(user_env(obj, num_envs, seed))
