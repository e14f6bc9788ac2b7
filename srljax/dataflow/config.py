"""Distributed-mode settings (`cfg.distributed`): rank layout, actor ring, off-policy control."""
from __future__ import annotations

import dataclasses
from typing import Optional

from srljax.errors import UserError

ALGORITHMS = ("ppo", "vtrace")


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """How the experiment is spread over MPI ranks (or over workers in one process)."""

    trainers: int = 1
    """Trainer ranks; with several, gradients are averaged across them every update."""
    policy_workers: int = 1
    """Policy-worker ranks serving batched inference to actors; 0 needs `inline_inference`."""
    buffers: int = 0
    """Buffer ranks between actors and trainers (0: actors post straight to trainers)."""
    actors: int = 2
    """Actors when run in one process; under mpirun the ranks left over are the actors."""
    inline_inference: bool = False
    """Actors run the policy themselves on CPU (jax in every actor) instead of asking a policy worker."""
    ring_size: int = 2
    """Env batches per actor: one simulates while the others wait for actions."""
    rollout_len: int = 32
    """Time steps T in one posted sample batch."""
    posts_per_update: int = 2
    """Sample batches (each [T, num_envs / ring_size]) a trainer joins into one update."""
    max_staleness: int = 4
    """Samples more than this many policy versions behind the trainer are dropped (and counted)."""
    algorithm: str = "ppo"
    """'ppo' (clipped surrogate, lag bounded by max_staleness) or 'vtrace' (IMPALA)."""
    send_slots: int = 2
    """Sample buffers per actor in flight or being filled, beyond the ring (backpressure bound)."""
    publish_every: int = 1
    """Trainer publishes parameters every this many updates."""
    log_interval_s: float = 1.0
    """Seconds between metric lines."""
    stop_at_return: Optional[float] = None
    """Stop early once the mean return of the last 100 episodes reaches this (None: run the budget)."""

    def validate(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UserError(f"distributed.algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        for name in ("trainers", "ring_size", "rollout_len", "posts_per_update", "send_slots", "publish_every"):
            if getattr(self, name) < 1:
                raise UserError(f"distributed.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("policy_workers", "buffers", "max_staleness", "actors"):
            if getattr(self, name) < 0:
                raise UserError(f"distributed.{name} must be >= 0, got {getattr(self, name)}")
        if self.policy_workers == 0 and not self.inline_inference:
            raise UserError("distributed.policy_workers is 0: set distributed.inline_inference=true "
                            "or give at least one policy worker")
