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


INITS = ("orthogonal", "lecun")
"""Hidden-layer initialisations (`network.init`): orthogonal with gain sqrt(2) and zero biases (PPO's,
PureJaxRL's), or flax's default LeCun normal (rejax's DQN and SAC)."""


class MLP(nn.Module):
    hidden: Sequence[int]
    activation: str = "tanh"
    init_scheme: str = "orthogonal"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for h in self.hidden:
            x = act((_dense(h, math.sqrt(2.0)) if self.init_scheme == "orthogonal" else nn.Dense(h))(x))
        return x


class ActorCritic(nn.Module):
    """Separate policy and value MLPs over the flattened observation.

    `obs_ndim` is the rank of one observation, so any leading batch axes pass through.
    """

    dist: Any
    obs_ndim: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    init_scheme: str = "orthogonal"      # the torsos' (`network.init`)

    @nn.compact
    def __call__(self, obs):
        lead = obs.shape[: obs.ndim - self.obs_ndim]
        x = obs.reshape(lead + (-1,))
        h = MLP(self.hidden, self.activation, self.init_scheme, name="policy_torso")(x)
        out = _dense(self.dist.out_size, 0.01)(h)
        if isinstance(self.dist, DiagGaussian):
            log_std = self.param("log_std", nn.initializers.zeros, (self.dist.dim,))
            out = (out, jnp.broadcast_to(log_std, out.shape))
        v = MLP(self.hidden, self.activation, self.init_scheme, name="value_torso")(x)
        value = _dense(1, 1.0)(v)[..., 0]
        return out, value
