"""Hide-and-seek in JAX (`hns_jax/quadrant`, `hns_jax/full`): the MuJoCo game (`envs.hide_and_seek`)
rebuilt on purpose-built planar physics so that `jit`, `vmap` and `scan` run it on any device.

    env = HideAndSeekJax("quadrant")            # or srljax.envs.make("hns_jax/quadrant")
    state = env.reset(jax.random.key(0))
    state = env.step(state, actions)             # actions int [4, 5]

See docs/hns_jax.md for the physics, how it differs from MuJoCo's, and the measurements.
"""
from __future__ import annotations

from srljax.envs.hns_jax.game import HideAndSeekJax

__all__ = ["HideAndSeekJax"]
