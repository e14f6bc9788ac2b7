"""DQN's config section, `dqn.*` (`srljax.learners.dqn` reads it; registry entry "dqn").

A frozen dataclass with a one-line docstring under every field (`--describe`-style help reads them
from this file's source); `config.validate` calls its `validate` when the registry entry of
`algorithm.name` lists the section. Imports no jax.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from srljax.errors import UserError


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """The `dqn` section (algorithm.name=dqn): replay, targets, exploration (distributed mode: Ape-X)."""

    lr: float = 1e-3
    """Adam learning rate of the Q-network."""
    gamma: float = 0.99
    """Discount."""
    n_step: int = 1
    """Steps summed into each target; an episode end inside the window cuts it short."""
    buffer_size: int = 50_000
    """Replay capacity in transitions (the oldest are overwritten)."""
    batch_size: int = 128
    """Transitions per gradient step."""
    learning_starts: int = 5_000
    """Env steps (all envs) collected before the first gradient step."""
    train_every: int = 1
    """Env-batch steps (each env.num_envs env steps) between rounds of gradient steps."""
    gradient_steps: int = 1
    """Gradient steps per round (replay ratio: gradient_steps * batch_size / (train_every * num_envs))."""
    target_update_every: int = 1
    """Gradient steps between target-network updates."""
    tau: float = 1.0
    """Target update: target <- tau * online + (1 - tau) * target (1.0: a hard copy)."""
    epsilon_start: float = 1.0
    """Exploration rate at the first env step."""
    epsilon_end: float = 0.05
    """Exploration rate after the decay."""
    epsilon_decay_steps: int = 50_000
    """Env steps over which epsilon falls linearly from epsilon_start to epsilon_end."""
    double: bool = True
    """Double DQN: the online network picks the next action, the target network values it."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    prioritized: bool = False
    """Prioritized replay (proportional to priority^alpha, importance weights (N P)^-beta)."""
    alpha: float = 0.6
    """Prioritized replay: how strongly priorities shape sampling (0: uniform)."""
    beta: float = 0.4
    """Prioritized replay: importance-weight exponent (1: full correction)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""
    loss: str = "huber"
    """TD loss: 'huber' (delta 1: the gradient of an error past 1 is clipped, Nature DQN) or 'l2' (td^2 / 2)."""
    replay_ratio: Optional[float] = None
    """Distributed mode: samples trained on per env step, held both ways (None: as gradient_steps implies)."""
    apex_epsilon: float = 0.4
    """Distributed mode (Ape-X): actor i of N explores with epsilon apex_epsilon^(1 + apex_alpha * i / (N - 1))."""
    apex_alpha: float = 7.0
    """Distributed mode (Ape-X): how fast the actors' exploration rates fall from actor 0 to actor N-1."""

    def validate(self, cfg) -> None:
        """Raise a UserError naming the first impossible `dqn.*` value of `cfg` (the whole config)."""
        num_envs = cfg.env.num_envs
        if (self.replay_ratio is not None and not self.replay_ratio > 0) or self.apex_alpha < 0:
            raise UserError(f"dqn.replay_ratio must be > 0 or null, got {self.replay_ratio}; dqn.apex_alpha >= 0")
        for name in ("lr", "n_step", "buffer_size", "batch_size", "train_every", "gradient_steps",
                     "target_update_every", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise UserError(f"dqn.{name} must be > 0, got {getattr(self, name)}")
        if self.loss not in ("huber", "l2"):
            raise UserError(f"dqn.loss must be 'huber' or 'l2', got {self.loss!r}")
        if self.batch_size > self.buffer_size:
            raise UserError(f"dqn.batch_size ({self.batch_size}) must be <= dqn.buffer_size ({self.buffer_size})")
        if num_envs > self.buffer_size:
            raise UserError(f"env.num_envs ({num_envs}) must be <= dqn.buffer_size ({self.buffer_size})")
        for name in ("gamma", "tau", "epsilon_start", "epsilon_end", "alpha", "beta", "apex_epsilon"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"dqn.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.tau == 0.0 or self.learning_starts < 0 or self.epsilon_decay_steps < 0:
            raise UserError("dqn.tau must be > 0, dqn.learning_starts and dqn.epsilon_decay_steps >= 0")
