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


Space = Discrete | MultiDiscrete | Box
