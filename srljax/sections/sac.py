"""SAC's config section, `sac.*` (`srljax.learners.sac` reads it; registry entry "sac"). Imports no jax.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from srljax.errors import UserError


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """The `sac` section (algorithm.name=sac): replay, critics, entropy temperature."""

    lr: float = 1e-3
    """Adam learning rate of the actor and the twin critics."""
    alpha_lr: float = 1e-3
    """Adam learning rate of log alpha, the entropy temperature."""
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Target critics <- tau * critics + (1 - tau) * target critics after every gradient step."""
    n_step: int = 1
    """Steps summed into each target; an episode end inside the window cuts it short."""
    buffer_size: int = 100_000
    """Replay capacity in transitions (the oldest are overwritten)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Env steps (all envs) of uniformly random actions collected before the first gradient step."""
    train_every: int = 1
    """Env-batch steps (each env.num_envs env steps) between rounds of gradient steps."""
    gradient_steps: int = 1
    """Gradient steps per round (replay ratio: gradient_steps * batch_size / (train_every * num_envs))."""
    init_alpha: float = 1.0
    """Entropy temperature at the start."""
    learn_alpha: bool = True
    """Learn log alpha so that the policy's entropy moves toward target_entropy (false: alpha stays init_alpha)."""
    target_entropy: Optional[float] = None
    """Target entropy of the squashed policy in [-1, 1]^A (None: -A, minus the action dimension)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip of the actor's and the critics' gradients."""
    prioritized: bool = False
    """Prioritized replay (proportional to priority^alpha, the critics' mean |TD|; importance weights (N P)^-beta)."""
    alpha: float = 0.6
    """Prioritized replay: how strongly priorities shape sampling (0: uniform)."""
    beta: float = 0.4
    """Prioritized replay: importance-weight exponent (1: full correction)."""
    replay_ratio: Optional[float] = None
    """Distributed mode: samples trained on per env step, held both ways (None: as gradient_steps implies)."""

    def validate(self, cfg) -> None:
        """Raise a UserError naming the first impossible `sac.*` value of `cfg` (the whole config)."""
        num_envs = cfg.env.num_envs
        if self.replay_ratio is not None and not self.replay_ratio > 0:
            raise UserError(f"sac.replay_ratio must be > 0 or null, got {self.replay_ratio}")
        if not (0.0 <= self.alpha <= 1.0 and 0.0 <= self.beta <= 1.0):
            raise UserError(f"sac.alpha and sac.beta must be in [0, 1], got {self.alpha}, {self.beta}")
        for name in ("lr", "alpha_lr", "tau", "n_step", "buffer_size", "batch_size", "train_every",
                     "gradient_steps", "init_alpha", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise UserError(f"sac.{name} must be > 0, got {getattr(self, name)}")
        if max(self.batch_size, num_envs) > self.buffer_size:
            raise UserError(f"sac.batch_size ({self.batch_size}) and env.num_envs ({num_envs}) must be <= sac.buffer_size ({self.buffer_size})")
        if not (0.0 <= self.gamma <= 1.0 and self.tau <= 1.0 and self.learning_starts >= 0):
            raise UserError("sac.gamma must be in [0, 1], sac.tau in (0, 1] and sac.learning_starts >= 0")
