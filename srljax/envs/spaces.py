"""Action and observation spaces shared by JAX envs and CPU vector envs."""
from __future__ import annotations

import dataclasses
from typing import Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class Discrete:
    """One integer action in [0, n)."""

    n: int

    @property
    def shape(self) -> Tuple[int, ...]:
        return ()


@dataclasses.dataclass(frozen=True)
class MultiDiscrete:
    """Several integer actions at once; part i lies in [0, nvec[i])."""

    nvec: Tuple[int, ...]

    @property
    def shape(self) -> Tuple[int, ...]:
        return (len(self.nvec),)


@dataclasses.dataclass(frozen=True)
class Box:
    """A real vector with per-element bounds (used for continuous actions and observations)."""

    low: float | np.ndarray
    high: float | np.ndarray
    shape: Tuple[int, ...]

    def __hash__(self):
        return hash((self.shape, float(np.min(self.low)), float(np.max(self.high))))

    def __eq__(self, other):
        return (isinstance(other, Box) and self.shape == other.shape
                and np.array_equal(self.low, other.low) and np.array_equal(self.high, other.high))


class Entities(dict):
    """An observation space laid out for the entity-attention network (`learners.entity_net`): a
    dict of Boxes, one key per entity type (`agents`, `boxes`, `ramps`: [count, features]) with its
    masks (`*_visible`, `*_exists`), plus `self` and `lidar`. An env declares it to get that
    network; any other dict observation space (a plain `dict` of Boxes, nested dicts too) gets an
    MLP over its flattened leaves (`learners.models.make_model`)."""


class WorldState(dict):
    """A dict observation space of two keys: `obs`, what the agent sees (the policy reads only it),
    and `state`, a global state (the critic reads only it): a centralised critic, MAPPO's. An env
    declares it to split its observation so (`learners.models.make_model`); the learner stays the
    same, since both halves travel as one observation."""


def zeros(space, lead: Tuple[int, ...] = ()):
    """float32 zeros shaped as observations of `space` with leading axes `lead` (a dict space: a
    dict of them, nested as the space is)."""
    if isinstance(space, dict):
        return {k: zeros(v, lead) for k, v in space.items()}
    return np.zeros(tuple(lead) + tuple(space.shape), np.float32)


Space = Discrete | MultiDiscrete | Box
"""An action space. An observation space is a Box, or a dict of observation spaces (`Entities`
among them)."""
