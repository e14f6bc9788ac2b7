"""The one place an env's spaces are checked and turned into srljax's (`srljax.envs.spaces`).

Every adapter passes the spaces its env declares through `convert`: gymnasium's (`GymVectorEnv`,
`FromGymnasium`, the PettingZoo adapter, per agent), gymnax's (`GymnaxEnv`) and srljax's own (a
user's `JaxEnv`). What srljax drives:

- observations: a Box of any dtype and shape (uint8 images too; the adapters hand the learner
  float32, the network flattens it), MultiBinary (0/1 floats) and Discrete (one-hot, `one_hot`);
  in fused mode (`convert(..., nested=True)`: the JAX adapters) also a Dict of those, nested too
  (srljax's own: a `dict` of spaces, or `spaces.Entities`), which reaches the learner as a dict
  of float32 arrays;
- actions: Discrete (a nonzero gymnasium `start` too: the policy acts in [0, n) and the adapter adds
  `start` back, `action_offset`), MultiDiscrete with one axis of `nvec` (its `start` likewise),
  MultiBinary with one axis (as MultiDiscrete of 2s), and a Box with one axis (bounded or not; SAC
  also needs finite bounds, `learners.sac.build`).

Anything else (Tuple, Dict, Text, Graph, a MultiDiscrete observation, a Box action of another rank, ...)
is refused here with one line naming the env, the space and what srljax drives, when the env is
made: before a run writes anything (both modes make the env and the learner before the run
directory). Which algorithm takes which action space is `check_algorithm`'s (from the algorithm
registry, `learners.registry`: DQN Discrete, SAC a Box with finite bounds, PPO and V-trace all).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Optional, Tuple

import numpy as np

from srljax.envs import spaces
from srljax.errors import UserError

DRIVES = ("srljax drives Box, MultiBinary and Discrete observations (in fused mode Dicts of them too) and "
          "Discrete, MultiDiscrete, MultiBinary or one-axis Box actions")
FLATTEN_HINT = " (gymnasium.wrappers.FlattenObservation turns it into a Box)"


def _family(space: Any) -> str:
    module = type(space).__module__
    if module.startswith("gymnasium"):
        return "gymnasium"
    if module.startswith(("gymnax", "jaxmarl")):       # JaxMARL's spaces are gymnax's, copied
        return "gymnax"
    return "srljax" if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete, spaces.Box)) else "other"


def describe(space: Any, limit: int = 90) -> str:
    """A short one-line name of any space (gymnasium's own repr; gymnax's and srljax's rebuilt)."""
    kind = type(space).__name__
    if isinstance(space, dict):
        text = "Dict(" + ", ".join(f"{k!r}: {describe(v, limit)}" for k, v in space.items()) + ")"
    elif isinstance(space, (tuple, list)):
        text = "Tuple(" + ", ".join(describe(v, limit) for v in space) + ")"
    elif _family(space) == "gymnax":
        if kind == "Discrete":
            text = f"Discrete({space.n})"
        elif kind == "Box":
            text = f"Box(shape={tuple(space.shape)}, dtype={np.dtype(space.dtype).name})"
        elif kind in ("Tuple", "Dict"):
            inner = space.spaces
            text = describe(dict(inner) if kind == "Dict" else tuple(inner), limit)
        else:
            text = kind
    elif _family(space) == "srljax" and isinstance(space, spaces.Box):
        low, high = np.unique(np.asarray(space.low)), np.unique(np.asarray(space.high))
        bounds = f"{low[0]:g}, {high[0]:g}, " if low.size == 1 and high.size == 1 else ""
        text = f"Box({bounds}shape={tuple(space.shape)})"
    else:
        text = repr(space)
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def refusal(env: str, what: str, space: Any, why: str = "", hint: str = "") -> UserError:
    """The one line: `env NAME: WHAT space SPACE is not supported[ (WHY)]; srljax drives ...[HINT]`."""
    why = f" ({why})" if why else ""
    return UserError(f"env {env}: {what} space {describe(space)} is not supported{why}; {DRIVES}{hint}")


def convert(space: Any, what: str, env: str, nested: bool = False) -> spaces.Space:
    """srljax's space for one env's `what` space ("observation", "action", "agent X's observation",
    ...), or the one-line refusal (`refusal`). `env`: the name the line gives (e.g. gym/CartPole-v1).
    `nested`: observation Dicts (fused mode) become dicts of srljax's spaces (`spaces.Entities` stays
    itself)."""
    family, kind = _family(space), type(space).__name__
    observation = "action" not in what
    hint = FLATTEN_HINT if family == "gymnasium" and observation else ""
    is_dict = isinstance(space, dict) or (kind == "Dict" and family in ("gymnasium", "gymnax"))
    if is_dict and observation and nested:
        items = list((space if isinstance(space, dict) else space.spaces).items())
        if not items:
            raise refusal(env, what, space, "an empty Dict")
        for key, _ in items:
            if not isinstance(key, str):
                raise refusal(env, what, space, f"Dict keys must be strings, not {type(key).__name__}")
        out = {key: convert(sub, f"{what} {key!r}", env, nested=True) for key, sub in items}
        return type(space)(out) if isinstance(space, (spaces.Entities, spaces.WorldState)) else out
    if family not in ("gymnasium", "gymnax", "srljax"):
        raise refusal(env, what, space, hint=hint)
    if kind == "Box":
        shape = tuple(int(n) for n in space.shape)
        if not observation and len(shape) != 1:
            raise refusal(env, what, space, f"Box actions need one axis, this has shape {shape}")
        low, high = (np.broadcast_to(np.asarray(b, np.float64), shape).astype(np.float32)
                     for b in (space.low, space.high))
        return spaces.Box(low, high, shape)
    if kind == "MultiBinary":
        shape = tuple(int(n) for n in np.atleast_1d(space.n))
        if observation:
            return spaces.Box(np.zeros(shape, np.float32), np.ones(shape, np.float32), shape)
        if len(shape) != 1:
            raise refusal(env, what, space, f"MultiBinary actions need one axis, this has shape {shape}")
        return spaces.MultiDiscrete((2,) * shape[0])
    if observation and kind == "Discrete":          # one-hot (`one_hot`)
        n = int(space.n)
        return spaces.Box(np.zeros(n, np.float32), np.ones(n, np.float32), (n,))
    if observation and kind == "MultiDiscrete":
        raise refusal(env, what, space, hint=hint)
    if kind == "Discrete":
        return spaces.Discrete(int(space.n))
    if kind == "MultiDiscrete":
        nvec = np.asarray(space.nvec)
        if nvec.ndim != 1:
            raise refusal(env, what, space, f"MultiDiscrete actions need one axis, nvec has shape {nvec.shape}")
        return spaces.MultiDiscrete(tuple(int(n) for n in nvec))
    raise refusal(env, what, space, hint=hint)


def one_hot(space: Any) -> Optional[Callable[[Any], np.ndarray]]:
    """For a Discrete observation space (gymnasium's, `start` too): the function that turns the env's
    observations (any leading axes) into srljax's, float32 one-hot rows; None for every other space,
    whose observations the adapters take as float32 arrays as they come."""
    if type(space).__name__ != "Discrete" or _family(space) not in ("gymnasium", "gymnax"):
        return None
    eye, start = np.eye(int(space.n), dtype=np.float32), int(getattr(space, "start", 0))
    return lambda obs: eye[np.asarray(obs, np.int64) - start]


def action_offset(space: Any) -> Optional[np.ndarray]:
    """What to add to srljax's actions (each part in [0, n)) to get the env's: a gymnasium Discrete
    or MultiDiscrete `start` (None where it is zero, as for every other space)."""
    start = getattr(space, "start", None)
    if _family(space) != "gymnasium" or type(space).__name__ not in ("Discrete", "MultiDiscrete") or start is None:
        return None
    start = np.asarray(start, np.int64)
    return start if np.any(start != 0) else None


NEEDS = {"Discrete": "discrete", "MultiDiscrete": "multi-discrete", "Box": "continuous (Box, one axis)",
         "BoundedBox": "continuous (Box, one axis)"}


def check_algorithm(algorithm: str, env: str, action_space: spaces.Space, kinds: Tuple[str, ...]) -> None:
    """Refuse, in one line, an action space (srljax's, from `convert`) that `algorithm` cannot drive:
    `kinds` are the srljax space classes it takes (empty: all); "BoundedBox" is a Box with finite
    bounds (SAC squashes its actions into them)."""
    if not kinds:
        return
    kind = type(action_space).__name__
    if kind == "Box" and "BoundedBox" in kinds:
        low, high = (np.asarray(b, np.float32) for b in (action_space.low, action_space.high))
        if np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low):
            return
        raise UserError(f"{algorithm} needs finite action bounds with high > low; env {env!r} has "
                        f"{describe(action_space)} actions (it squashes its actions into the bounds; use "
                        "algorithm.name=ppo)")
    if kind not in kinds:
        need = " or ".join(dict.fromkeys(NEEDS.get(k, k) for k in kinds))
        raise UserError(f"{algorithm} needs a {need} action space; env {env!r} has {describe(action_space)} "
                        "actions (use algorithm.name=ppo)")
