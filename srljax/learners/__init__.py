"""Learners: the generic loss-driven learner, PPO, networks, distributions, normalisation.

The names below load on first use, so importing a jax-free submodule (e.g. `hns_presets`, read by
`srljax.config`) does not import jax.
"""
import importlib

_EXPORTS = {"Learner": "learner", "LearnerSettings": "learner", "LearnerState": "learner", "Model": "learner",
            "PolicyParams": "learner", "RecurrentModel": "learner", "gae": "learner", "gae_prepare": "learner",
            "make_algorithm": "ppo", "make_model": "ppo", "ppo_loss": "ppo"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"srljax.learners.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'srljax.learners' has no attribute {name!r}")
