"""`make(name)`: one place that turns an env name into an env.

Names have a family prefix:
  gymnax/NAME   any gymnax env (JAX, fused mode)
  brax/NAME     any brax env (JAX, fused mode)
  jaxmarl/NAME  any JaxMARL multi-agent env (JAX, fused mode), e.g. jaxmarl/MPE_simple_spread_v3
                (`pip install jaxmarl`; `srljax.envs.jaxmarl_adapter`)
  jax/MODULE:ATTR  your own JAX env from an importable module (fused mode): ATTR is a srljax `JaxEnv`
                or a gymnax `Environment` (an instance, optionally `(env, params)`), or a class or
                function that returns one when called with `env.kwargs`
  gym/ID        any gymnasium id (CPU vector env, distributed mode)
  hns/VARIANT   hide-and-seek on MuJoCo, `quadrant` or `full` (CPU vector env)
  hns_jax/VARIANT  hide-and-seek in JAX, `quadrant` or `full` (fused mode; `srljax.envs.hns_jax`)
  pz/MODULE     a PettingZoo ParallelEnv from `MODULE.parallel_env()`, e.g. pz/mpe2.simple_spread_v3
                (CPU vector env, multi-agent: `srljax.envs.pettingzoo_adapter`)

`make` gives gym/ ids as a `gymnasium.vector.VectorEnv` (`GymVectorEnv`); `make_vector` gives
every CPU env as srljax's own vector env (`srljax.envs.vector`), which distributed mode steps.
"""
from __future__ import annotations

from srljax.errors import UserError

FAMILIES = ("gymnax", "brax", "jaxmarl", "jax", "hns_jax", "gym", "hns", "pz")
JAX_FAMILIES = ("gymnax", "brax", "jaxmarl", "jax", "hns_jax")


def _gymnax_names():
    from srljax.envs.deferred import import_gymnax
    return list(import_gymnax().registered_envs)


def _brax_names():
    from brax import envs as brax_envs
    return sorted(brax_envs._envs)  # brax keeps its registry in this module-level dict


def available(family: str) -> list[str]:
    """Env names of one family (gymnasium lists its registered ids).

    Args:
        family: `gymnax`, `brax`, `jaxmarl`, `jax`, `hns_jax`, `gym`, `hns` or `pz`.
    """
    if family == "gymnax":
        return _gymnax_names()
    if family == "brax":
        return _brax_names()
    if family in ("hns", "hns_jax"):
        return ["quadrant", "full"]
    if family == "gym":
        import gymnasium
        return sorted(gymnasium.registry)
    if family == "pz":
        return ["mpe2.simple_spread_v3 (any module with parallel_env())"]
    if family == "jaxmarl":
        from srljax.envs.jaxmarl_adapter import _import_jaxmarl
        return list(_import_jaxmarl().registered_envs)
    if family == "jax":
        return ["MODULE:ATTR (your own JAX env: a JaxEnv or gymnax Environment, or what makes one)"]
    raise UserError(f"unknown env family {family!r}; families: {', '.join(FAMILIES)}")


def split_name(name: str) -> tuple[str, str]:
    if not isinstance(name, str) or "/" not in name:
        raise UserError(f"env name {name!r} must look like FAMILY/NAME with FAMILY one of {', '.join(FAMILIES)} "
                        "(e.g. gymnax/CartPole-v1, brax/ant, gym/CartPole-v1, hns/quadrant, pz/mpe2.simple_spread_v3)")
    family, rest = name.split("/", 1)
    if family not in FAMILIES:
        raise UserError(f"unknown env family {family!r} in {name!r}; families: {', '.join(FAMILIES)}")
    return family, rest


def is_jax_env(name: str) -> bool:
    return split_name(name)[0] in JAX_FAMILIES


def check_name(name: str) -> None:
    """Raise a UserError listing what exists when `name` is not a known env."""
    family, rest = split_name(name)
    if family in ("gym", "pz"):
        return  # checked when made (gymnasium's registry has hundreds of ids; pz/ names a module)
    if family == "jax":
        module, _, attr = rest.partition(":")
        if not module or not attr:
            raise UserError(f"env {name!r}: jax/ takes MODULE:ATTR, e.g. jax/my_envs:Corridor")
        return      # imported when made
    names = available(family)
    if rest not in names:
        raise UserError(f"unknown env {name!r}; {family} envs: {', '.join(names)}")


def make(name: str, num_envs: int | None = None, seed: int = 0, **kwargs):
    """Make an env by name (or from a user's env object: `srljax.envs.custom`).

    JAX envs (gymnax/, brax/): with `num_envs`, the training stack (batched, auto-reset keeping
    the final observation, episode statistics); without, the single unbatched env.
    CPU envs (gym/, hns/, pz/): a vector env of `num_envs` copies (default 1) seeded with `seed`;
    gym/ ids and gymnasium env factories as a `gymnasium.vector.VectorEnv`, a VectorEnv object as
    itself.

    Args:
        name: `FAMILY/NAME` (`gymnax/CartPole-v1`, `brax/ant`, `gym/CartPole-v1`, `hns/quadrant`,
            `pz/mpe2.simple_spread_v3`), or your own env object: a `JaxEnv`, a gymnax `Environment`
            (optionally `(env, params)`), a gymnasium `VectorEnv`, or a factory of gymnasium or
            PettingZoo envs.
        num_envs: env copies stepped together (JAX envs: None gives the single unbatched env).
        seed: the CPU envs' seed (JAX envs take their key in `reset`).
        **kwargs: the env's own keyword arguments (`env.kwargs` in the config), e.g. brax's `backend`.

    Raises:
        UserError: an unknown family or name (the message lists what exists), or `kwargs` the env
            does not take.
    """
    if not isinstance(name, str):          # a user's own env object (srljax.envs.custom)
        from srljax.envs import custom
        if custom.is_jax(name):
            return custom.jax_env(name, 1 if num_envs is None else num_envs)
        return custom.user_env(name, 1 if num_envs is None else num_envs, seed)
    check_name(name)
    try:
        return _make(name, num_envs, seed, kwargs)
    except TypeError as exc:               # an env.kwargs key the env does not take
        if "unexpected keyword" not in str(exc) and "got an unexpected" not in str(exc):
            raise
        raise UserError(f"env.kwargs {sorted(kwargs)} do not fit env {name!r}: {exc}") from None


def make_vector(name, num_envs: int = 1, seed: int = 0, **kwargs):
    """A CPU env (a name or a user's env object) as srljax's own vector env (`envs.vector`): what
    distributed mode's actors step.

    Args:
        name: a CPU env name (`gym/`, `hns/`, `pz/`) or your own CPU env object, as for `make`.
        num_envs: env copies stepped together.
        seed: the envs' seed.
        **kwargs: the env's own keyword arguments.
    """
    from srljax.envs.gymnasium_vector import as_srljax
    if not isinstance(name, str):
        from srljax.envs import custom
        return custom.vector_env(name, num_envs, seed)
    return as_srljax(make(name, num_envs=num_envs, seed=seed, **kwargs))


def _make(name: str, num_envs, seed: int, kwargs):
    family, rest = split_name(name)
    if family in JAX_FAMILIES:
        from srljax.envs.adapters import BraxEnv, GymnaxEnv
        from srljax.envs.core import wrap_for_training

        if family == "jax":
            env = _own_jax_env(name, rest, kwargs)
        elif family == "jaxmarl":
            from srljax.envs.jaxmarl_adapter import JaxMARLEnv
            env = JaxMARLEnv(rest, **kwargs)
        elif family == "hns_jax":
            from srljax.envs.hns_jax import HideAndSeekJax
            env = HideAndSeekJax(rest, **kwargs)
        else:
            env = GymnaxEnv(rest, **kwargs) if family == "gymnax" else BraxEnv(rest, **kwargs)
        return env if num_envs is None else wrap_for_training(env, int(num_envs))
    n = 1 if num_envs is None else int(num_envs)
    if family == "gym":
        from srljax.envs.gymnasium_adapter import GymVectorEnv
        return GymVectorEnv(rest, num_envs=n, seed=seed, **kwargs)
    if family == "pz":
        from srljax.envs.pettingzoo_adapter import PettingZooVectorEnv
        return PettingZooVectorEnv.from_module(rest, num_envs=n, seed=seed, **kwargs)
    from srljax.envs.hide_and_seek import make_vec_env
    return make_vec_env(rest, num_envs=n, seed=seed, **kwargs)


def _own_jax_env(name: str, rest: str, kwargs):
    """`jax/MODULE:ATTR`: the user's JAX env, its spaces checked (`custom.checked_jax_env`)."""
    import importlib

    from srljax.envs import custom
    from srljax.envs.adapters import GymnaxEnv
    module_name, _, attr = rest.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:            # noqa: BLE001 (a user's module: any error, one line)
        raise UserError(f"env {name!r}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise UserError(f"env {name!r}: module {module_name!r} has no attribute {attr!r}")
    if not custom.is_jax(obj) and callable(obj):
        obj = obj(**kwargs)
    elif kwargs:
        raise UserError(f"env.kwargs {sorted(kwargs)} do not fit env {name!r}: {attr} is an env object, not a "
                        "class or function to call with them")
    if not custom.is_jax(obj):
        raise UserError(f"env {name!r}: {attr} gives a {type(obj).__name__}, not a srljax JaxEnv or a gymnax "
                        "Environment (optionally with its params)")
    env, params = obj if isinstance(obj, tuple) else (obj, None)
    if custom._is_gymnax(env):
        return GymnaxEnv.from_env(env, params, name=name)
    return custom.checked_jax_env(env, name)
