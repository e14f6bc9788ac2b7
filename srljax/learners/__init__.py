"""Learners: the generic loss-driven learner, PPO, networks, distributions, normalisation."""
from srljax.learners.learner import Learner, LearnerSettings, LearnerState, Model, PolicyParams, gae, gae_prepare
from srljax.learners.ppo import make_algorithm, make_model, ppo_loss

__all__ = ["Learner", "LearnerSettings", "LearnerState", "Model", "PolicyParams", "gae", "gae_prepare",
           "make_algorithm", "make_model", "ppo_loss"]
