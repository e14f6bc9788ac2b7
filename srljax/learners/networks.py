"""Policy and value networks (flax). A network maps observations to (policy output, value)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from srljax.learners.distributions import DiagGaussian

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "elu": nn.elu, "swish": nn.swish}


def _dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)


class MLP(nn.Module):
    hidden: Sequence[int]
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for h in self.hidden:
            x = act(_dense(h, math.sqrt(2.0))(x))
        return x


class ActorCritic(nn.Module):
    """Separate policy and value MLPs over the flattened observation.

    `obs_ndim` is the rank of one observation, so any leading batch axes pass through.
    """

    dist: Any
    obs_ndim: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs):
        lead = obs.shape[: obs.ndim - self.obs_ndim]
        x = obs.reshape(lead + (-1,))
        h = MLP(self.hidden, self.activation, name="policy_torso")(x)
        out = _dense(self.dist.out_size, 0.01)(h)
        if isinstance(self.dist, DiagGaussian):
            log_std = self.param("log_std", nn.initializers.zeros, (self.dist.dim,))
            out = (out, jnp.broadcast_to(log_std, out.shape))
        v = MLP(self.hidden, self.activation, name="value_torso")(x)
        value = _dense(1, 1.0)(v)[..., 0]
        return out, value
