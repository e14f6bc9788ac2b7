"""Environments: the JAX env protocol, adapters, CPU vector envs and the `make` registry."""
from srljax.envs.registry import available, is_jax_env, make, make_vector
from srljax.envs.spaces import Box, Discrete, MultiDiscrete

__all__ = ["make", "make_vector", "available", "is_jax_env", "Box", "Discrete", "MultiDiscrete"]
