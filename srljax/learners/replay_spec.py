"""The replay spec: one source for what a replay algorithm asks of its buffer, in both modes.

A replay algorithm's registry builder makes its `ReplaySettings` from its config section; fused
mode's loop (`dataflow.fused.replay`) reads them from the built algorithm (`algo.replay`), and
distributed mode's buffer workers and trainers derive theirs from the same object
(`dataflow.replay.store.BufferSettings.derive`): no mode reads a replay field of a config section.
Imports no jax (the buffer workers' store is numpy).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

PRIORITY_EPS = 1e-6
"""Added to |TD error| so that no transition's priority is 0 (device buffer and buffer workers)."""


@dataclasses.dataclass(frozen=True)
class ReplaySettings:
    buffer_size: int
    """Transitions held (fused mode: over all devices; distributed mode: per buffer worker)."""
    batch_size: int
    """Transitions per gradient step."""
    learning_starts: int
    """Env steps (all envs) before the first gradient step."""
    train_every: int
    """Env-batch steps between rounds of gradient steps (fused mode)."""
    gradient_steps: int
    """Gradient steps per round (fused mode), per replay message (distributed mode)."""
    n_step: int = 1
    """Steps summed into a transition's return, cut short at an episode end."""
    gamma: float = 0.99
    """Discount of the n-step return."""
    prioritized: bool = False
    """Prioritized sampling, proportional to priority^alpha with importance weights (N P)^-beta."""
    alpha: float = 0.6
    beta: float = 0.4
    replay_ratio: Optional[float] = None
    """Distributed mode: samples trained on per env step, held both ways (None: what the schedule implies)."""
    apex_epsilon: Optional[float] = None
    """Distributed mode, discrete actions (Ape-X): actor i of N acts epsilon-greedily with
    apex_epsilon^(1 + apex_alpha * i / (N - 1)) around the algorithm's actions; None: no such exploration."""
    apex_alpha: float = 7.0

    def target_ratio(self, num_envs: int) -> float:
        """Sampled transitions per env step: `replay_ratio`, or the fused schedule's
        gradient_steps * batch_size / (train_every * num_envs)."""
        if self.replay_ratio is not None:
            return float(self.replay_ratio)
        return self.gradient_steps * self.batch_size / (self.train_every * num_envs)

    def actor_epsilon(self, index: int, count: int) -> float:
        """Ape-X's exploration rate of actor `index` of `count` (0 when `apex_epsilon` is None)."""
        if self.apex_epsilon is None:
            return 0.0
        return apex_epsilon(self.apex_epsilon, self.apex_alpha, index, count)


def apex_epsilon(base: float, alpha: float, index: int, count: int) -> float:
    """Ape-X's exploration rate of actor `index` of `count`: base^(1 + alpha * index / (count - 1))."""
    return float(base) ** (1.0 + (alpha * index / (count - 1) if count > 1 else 0.0))
