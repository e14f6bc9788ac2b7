"""Running mean and variance of observations, averaged across devices.

The statistics are kept as (count, mean, M2) and merged with Chan's parallel formula, so a batch
from each device combines exactly as if all samples had been seen by one.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    count: jax.Array
    mean: jax.Array
    m2: jax.Array

    @classmethod
    def create(cls, shape) -> "RunningStats":
        return cls(count=jnp.zeros((), jnp.float32), mean=jnp.zeros(shape, jnp.float32),
                   m2=jnp.zeros(shape, jnp.float32))

    @property
    def std(self):
        return jnp.sqrt(self.m2 / jnp.maximum(self.count, 1.0) + 1e-8)


def update(stats: RunningStats, x: jax.Array, axis_name: Optional[str] = None) -> RunningStats:
    """Fold a batch `x [..., *shape]` into the statistics; with `axis_name`, across devices too."""
    shape = stats.mean.shape
    flat = x.reshape((-1,) + shape).astype(jnp.float32)
    n = jnp.asarray(flat.shape[0], jnp.float32)
    mean = flat.mean(0)
    m2 = ((flat - mean) ** 2).sum(0)
    if axis_name is not None:
        # Merge the per-device batches first: total count, global mean, and M2 about it.
        total = jax.lax.psum(n, axis_name)
        gmean = jax.lax.psum(mean * n, axis_name) / total
        m2 = jax.lax.psum(m2 + n * (mean - gmean) ** 2, axis_name)
        n, mean = total, gmean
    count = stats.count + n
    delta = mean - stats.mean
    new_mean = stats.mean + delta * n / count
    new_m2 = stats.m2 + m2 + delta ** 2 * stats.count * n / count
    return RunningStats(count=count, mean=new_mean, m2=new_m2)


def normalize(stats: Optional[RunningStats], x: jax.Array, clip: float = 10.0) -> jax.Array:
    if stats is None:
        return x
    return jnp.clip((x - stats.mean) / stats.std, -clip, clip)
