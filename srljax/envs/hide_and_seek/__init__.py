"""Hide-and-seek (Baker et al. 2019) on MuJoCo: a batched CPU vector env and a scenario API.

    env = make_vec_env("quadrant", num_envs=16, seed=0)   # or "full"
    obs = env.reset(0)
    obs, reward, terminated, truncated, info = env.step(actions)   # actions int [16, 4, 5]

See docs/hide_and_seek.md for the observation layout and the rule decisions.
"""
from __future__ import annotations

from srljax.envs.hide_and_seek.env import HideAndSeekVecEnv
from srljax.envs.hide_and_seek.layout import Layout, draw_layout
from srljax.envs.hide_and_seek.scenario import Agent, Box, Ramp, Scenario, Wall, act
from srljax.envs.hide_and_seek.scene import VARIANTS, Variant

__all__ = ["Agent", "Box", "HideAndSeekVecEnv", "Layout", "Ramp", "Scenario", "VARIANTS", "Variant",
           "Wall", "act", "draw_layout", "make_vec_env"]


def make_vec_env(variant: str, num_envs: int = 1, seed: int = 0, **kwargs) -> HideAndSeekVecEnv:
    """The registry's entry point for "hns/quadrant" and "hns/full".

    kwargs: horizon (steps per episode), prep_steps (length of the preparation phase)."""
    return HideAndSeekVecEnv(variant, num_envs=num_envs, seed=seed, **kwargs)
