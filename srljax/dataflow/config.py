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
    posts_per_update: int = 2
    """Sample batches (each [ppo.rollout_len, env.num_envs / ring_size]) a trainer joins into one update."""
    max_staleness: int = 4
    """Samples more than this many policy versions behind the trainer are dropped (and counted)."""
    algorithm: str = "ppo"
    """'ppo' (clipped surrogate, lag bounded by max_staleness) or 'vtrace' (IMPALA)."""
    vtrace_rho_clip: float = 1.0
    """V-trace: clip of the importance weights in the targets and the policy gradient (rho bar)."""
    vtrace_c_clip: float = 1.0
    """V-trace: clip of the trace-cutting weights (c bar)."""
    send_slots: int = 2
    """Sample buffers per actor in flight or being filled, beyond the ring (backpressure bound)."""
    random_opponents: float = 0.0
    """Two-team games (hide-and-seek): the fraction of episodes in which one team, drawn at random,
    plays uniformly random actions instead of the policy; those agents' steps are not learned from.
    Self-play alone can fit each team to the other's habits only; random opponents keep the
    policy good against behaviour it has not co-evolved with."""
    actor_nice: int = 0
    """Niceness actor ranks give themselves (0-19). Where ranks outnumber cores, a positive value
    lets trainers and policy workers run as soon as they have work, and actors use what is left:
    samples simulated while the trainer is starved would only be dropped as stale."""
    publish_every: int = 1
    """Trainer publishes parameters every this many updates."""
    log_interval_s: float = 1.0
    """Seconds between metric lines."""
    stop_at_return: Optional[float] = None
    """Stop early once the mean return of the last 100 episodes reaches this (None: run the budget)."""

    def validate(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise UserError(f"distributed.algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}")
        for name in ("trainers", "ring_size", "posts_per_update", "send_slots", "publish_every"):
            if getattr(self, name) < 1:
                raise UserError(f"distributed.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("policy_workers", "buffers", "max_staleness", "actors"):
            if getattr(self, name) < 0:
                raise UserError(f"distributed.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.random_opponents <= 1.0:
            raise UserError(f"distributed.random_opponents must be in [0, 1], got {self.random_opponents}")
        if not 0 <= self.actor_nice <= 19:
            raise UserError(f"distributed.actor_nice must be in 0..19, got {self.actor_nice}")
        if self.vtrace_rho_clip <= 0 or self.vtrace_c_clip <= 0:
            raise UserError("distributed.vtrace_rho_clip and distributed.vtrace_c_clip must be > 0")
        if self.log_interval_s <= 0:
            raise UserError(f"distributed.log_interval_s must be > 0, got {self.log_interval_s}")
        if self.policy_workers == 0 and not self.inline_inference:
            raise UserError("distributed.policy_workers is 0: set distributed.inline_inference=true "
                            "or give at least one policy worker")
