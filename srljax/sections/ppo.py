"""PPO's config section, `ppo.*`: epochs, optimiser and losses (`srljax.learners.ppo` reads it; V-trace's
learner takes its optimiser, epochs and learner settings from it too: registry entries "ppo" and "vtrace").

The rollout itself (steps per rollout, recurrent chunks, the non-finite guard) is the generic `rollout`
section of `srljax.config`, read by every algorithm and both modes. Imports no jax.
"""
from __future__ import annotations

import dataclasses

from srljax.errors import UserError


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """The `ppo` section: epochs, optimiser and losses of PPO (V-trace shares its optimiser, epochs and
    learner settings)."""

    epochs: int = 4
    """Passes over each batch."""
    minibatches: int = 4
    """Minibatches per epoch; each holds rollout.rollout_len / minibatches steps of every env."""
    lr: float = 2.5e-4
    """Adam learning rate."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """PPO ratio clip."""
    clip_value: bool = True
    """Clip the value update around the old value estimate, as the policy ratio is clipped."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    normalize_obs: bool = False
    """Running mean/std normalisation of observations (statistics averaged over devices)."""
    normalize_adv: bool = True
    """Normalise advantages within each minibatch."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before learning (episode returns are logged unscaled)."""
    normalize_value: bool = False
    """Standardise value targets by their running mean and std (the value head predicts standardised targets)."""

    def validate(self, cfg) -> None:
        """Raise a UserError naming the first impossible `ppo.*` value of `cfg` (the whole config: the
        minibatches must split `rollout.rollout_len` in fused mode)."""
        for name in ("epochs", "minibatches", "lr", "max_grad_norm", "reward_scale"):
            if not getattr(self, name) > 0:
                raise UserError(f"ppo.{name} must be > 0, got {getattr(self, name)}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UserError(f"ppo.{name} must be in [0, 1], got {getattr(self, name)}")
        for name in ("clip_eps", "vf_coef", "ent_coef", "adam_eps"):
            if getattr(self, name) < 0:
                raise UserError(f"ppo.{name} must be >= 0")
        T = cfg.rollout.rollout_len
        # a feedforward model's minibatches split the rollout's steps; a recurrent one's (network.core,
        # or chunk_len set for an env's entity network) take whole chunks: `FusedTrainer` checks those
        recurrent = cfg.network.core != "feedforward" or cfg.rollout.chunk_len > 0
        if cfg.mode == "fused" and T % self.minibatches and not recurrent:
            raise UserError(f"rollout.rollout_len ({T}) must divide into ppo.minibatches ({self.minibatches}) equal parts")
