"""Helpers the replay algorithms share (gradient averaging, Polyak averaging, flat observations).

What a replay algorithm must provide is written down as `learners.protocols.ReplayAlgorithm`; its
`ReplaySettings` (`learners.replay_spec`, re-exported here) are the one replay spec both modes read.
A transition is {"obs", "action", "reward" (the n-step return), "discount" (gamma^m, 0 after a
termination), "next_obs"}.
"""
from __future__ import annotations

import jax

from srljax.learners.networks import flatten_obs
from srljax.learners.replay_spec import ReplaySettings

__all__ = ["ReplaySettings", "average", "polyak", "flatten_obs"]


def average(tree, axis_name=None, grad_reduce=None):
    """The mean of `tree` over the devices of `axis_name` (fused mode, inside `shard_map`) and over
    the trainer processes (`grad_reduce`, distributed mode); `tree` itself when neither is given."""
    if axis_name is not None:
        tree = jax.lax.pmean(tree, axis_name)
    if grad_reduce is not None:
        tree = grad_reduce(tree)
    return tree


def polyak(online, target, tau):
    """target <- tau * online + (1 - tau) * target, leaf by leaf."""
    return jax.tree.map(lambda o, t: tau * o + (1.0 - tau) * t, online, target)

