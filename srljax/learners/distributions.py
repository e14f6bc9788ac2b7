"""Action distributions as pure functions of the policy head's output.

Each distribution is a small frozen object with `sample(out, key)`, `log_prob(out, action)` and
`entropy(out)`, where `out` is what the policy network emits for it. Leading axes broadcast.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Tuple

import jax
import jax.numpy as jnp

from srljax.envs.spaces import Box, Discrete, MultiDiscrete, Space

_LOG_2PI = math.log(2.0 * math.pi)


@dataclasses.dataclass(frozen=True)
class Categorical:
    """`out`: logits [..., n]; actions are int32 [...]."""

    n: int

    @property
    def out_size(self) -> int:
        return self.n

    def sample(self, logits, key):
        return jax.random.categorical(key, logits).astype(jnp.int32)

    def log_prob(self, logits, action):
        logp_all = jax.nn.log_softmax(logits)
        return jnp.take_along_axis(logp_all, action[..., None].astype(jnp.int32), axis=-1)[..., 0]

    def entropy(self, logits):
        logp_all = jax.nn.log_softmax(logits)
        return -jnp.sum(jnp.exp(logp_all) * logp_all, axis=-1)

    def mode(self, logits):
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class MultiCategorical:
    """Independent categoricals; `out`: concatenated logits [..., sum(nvec)]; actions int32 [..., k]."""

    nvec: Tuple[int, ...]

    @property
    def out_size(self) -> int:
        return int(sum(self.nvec))

    def _split(self, logits):
        return jnp.split(logits, list(itertools.accumulate(self.nvec))[:-1], axis=-1)

    def sample(self, logits, key):
        keys = jax.random.split(key, len(self.nvec))
        parts = [jax.random.categorical(k, lg) for k, lg in zip(keys, self._split(logits))]
        return jnp.stack(parts, axis=-1).astype(jnp.int32)

    def log_prob(self, logits, action):
        parts = [Categorical(n).log_prob(lg, action[..., i]) for i, (n, lg) in enumerate(zip(self.nvec, self._split(logits)))]
        return sum(parts)

    def entropy(self, logits):
        return sum(Categorical(n).entropy(lg) for n, lg in zip(self.nvec, self._split(logits)))

    def mode(self, logits):
        return jnp.stack([jnp.argmax(lg, -1) for lg in self._split(logits)], -1).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class DiagGaussian:
    """`out`: (mean [..., d], log_std [..., d]); actions float32 [..., d]. The env clips to its bounds."""

    dim: int

    @property
    def out_size(self) -> int:
        return self.dim

    def sample(self, out, key):
        mean, log_std = out
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)

    def log_prob(self, out, action):
        mean, log_std = out
        z = (action - mean) * jnp.exp(-log_std)
        return jnp.sum(-0.5 * z * z - log_std - 0.5 * _LOG_2PI, axis=-1)

    def entropy(self, out):
        _, log_std = out
        return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)

    def mode(self, out):
        return out[0]


def for_space(space: Space):
    """The distribution that fits an action space."""
    if isinstance(space, Discrete):
        return Categorical(space.n)
    if isinstance(space, MultiDiscrete):
        return MultiCategorical(tuple(int(n) for n in space.nvec))
    if isinstance(space, Box):
        if len(space.shape) != 1:
            raise ValueError(f"continuous actions must be a vector, got shape {space.shape}")
        return DiagGaussian(int(space.shape[0]))
    raise TypeError(f"unsupported action space {space!r}")
