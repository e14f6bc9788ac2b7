"""Learners: the generic loss-driven learner, PPO, networks, distributions, normalisation.

The algorithms are looked up by name in `registry` (jax-free). The names below load on first use,
so importing a jax-free submodule (`registry`, `models`) does not import jax.
"""
import importlib

_EXPORTS = {"Learner": "learner", "LearnerSettings": "learner", "LearnerState": "learner", "Model": "learner",
            "PolicyParams": "learner", "RecurrentModel": "learner", "gae": "learner", "gae_prepare": "learner",
            "make_algorithm": "registry", "make_model": "models", "ppo_loss": "ppo"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"srljax.learners.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'srljax.learners' has no attribute {name!r}")
