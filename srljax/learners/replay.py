"""A device-resident circular replay buffer: pure, jittable functions over one flax dataclass.

    buf = replay.init(example_transition, capacity)       # leaves [capacity, ...] of zeros
    buf = replay.add(buf, batch_tb)                        # leaves [T, B, ...]: T * B transitions
    idx, batch = replay.sample_uniform(buf, key, n)
    idx, batch, weight_n = replay.sample_prioritized(buf, key, n, alpha, beta)   # axis_name=: one shard per device
    buf = replay.update_priorities(buf, idx, priority_n)

A transition is any pytree (DQN's: obs, action, reward, discount, next_obs; `n_step_window`
turns the last n env steps into one). New transitions get
the largest priority seen so far, so each is likely to be replayed at least once. Sampling is with
replacement; prioritized sampling draws slot i with probability P(i) = p_i^alpha / sum_j p_j^alpha
over the filled slots and weighs it by (N P(i))^-beta, divided by the largest weight of the batch.
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import chex
import jax
import jax.numpy as jnp
from flax import struct

from srljax.learners.replay_spec import PRIORITY_EPS


@struct.dataclass
class Replay:
    data: Any               # pytree, leaves [capacity, ...]
    priority: jax.Array     # [capacity] raw priorities p_i (before ^alpha); 0 for empty slots
    index: jax.Array        # the next slot written
    size: jax.Array         # slots filled
    max_priority: jax.Array

    @property
    def capacity(self) -> int:
        return self.priority.shape[0]


def init(example: Any, capacity: int) -> Replay:
    """An empty buffer of `capacity` transitions shaped like `example` (one transition, no batch axis)."""
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
    zero = jnp.zeros((), jnp.int32)
    return Replay(data=data, priority=jnp.zeros((capacity,), jnp.float32), index=zero, size=zero,
                  max_priority=jnp.ones((), jnp.float32))


def add(buf: Replay, batch_tb: Any, valid=None) -> Replay:
    """Write a [T, B] batch of transitions (T * B <= capacity), oldest slots overwritten first.
    `valid` (a traced bool): when false, nothing is written (no `lax.cond` around the buffer)."""
    leaves = jax.tree.leaves(batch_tb)
    T, B = leaves[0].shape[:2]
    n = T * B
    if n > buf.capacity:
        raise ValueError(f"adding {n} transitions to a buffer of {buf.capacity}")
    slots = (buf.index + jnp.arange(n)) % buf.capacity
    if valid is not None:
        slots = jnp.where(valid, slots, buf.capacity)            # out of range: dropped
        n = jnp.where(valid, n, 0)
    data = jax.tree.map(lambda d, x: d.at[slots].set(x.reshape((T * B,) + x.shape[2:]).astype(d.dtype),
                                                     mode="drop"), buf.data, batch_tb)
    priority = buf.priority.at[slots].set(buf.max_priority, mode="drop")
    return buf.replace(data=data, priority=priority, index=(buf.index + n) % buf.capacity,
                       size=jnp.minimum(buf.size + n, buf.capacity))


def gather(buf: Replay, idx: jax.Array) -> Any:
    return jax.tree.map(lambda d: d[idx], buf.data)


def sample_uniform(buf: Replay, key: jax.Array, n: int) -> Tuple[jax.Array, Any]:
    """`n` filled slots drawn uniformly with replacement: (slots [n], transitions)."""
    idx = jax.random.randint(key, (n,), 0, jnp.maximum(buf.size, 1))
    return idx, gather(buf, idx)


def probabilities(buf: Replay, alpha: float) -> jax.Array:
    """P(i) = p_i^alpha / sum_j p_j^alpha over the filled slots (0 elsewhere), [capacity]."""
    filled = jnp.arange(buf.capacity) < buf.size
    scaled = jnp.where(filled, jnp.power(jnp.maximum(buf.priority, PRIORITY_EPS), alpha), 0.0)
    return scaled / jnp.maximum(jnp.sum(scaled), 1e-30)


def sample_prioritized(buf: Replay, key: jax.Array, n: int, alpha: float, beta: float,
                       axis_name: Optional[str] = None) -> Tuple[jax.Array, Any, jax.Array]:
    """`n` slots drawn with probability P(i): (slots [n], transitions, importance weights [n]).
    With `axis_name` (one shard of a buffer per device, each drawing its share of the batch) the
    weights are normalised by the largest over every device's draw."""
    prob = probabilities(buf, alpha)
    cdf = jnp.cumsum(prob)
    u = jax.random.uniform(key, (n,)) * cdf[-1]
    idx = jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, jnp.maximum(buf.size, 1) - 1)
    weight_n = jnp.power(buf.size.astype(jnp.float32) * jnp.maximum(prob[idx], 1e-30), -beta)
    largest = jnp.max(weight_n)
    if axis_name is not None:
        largest = jax.lax.pmax(largest, axis_name)
    weight_n = weight_n / largest
    chex.assert_shape([idx, weight_n], (n,))
    return idx, gather(buf, idx), weight_n


def update_priorities(buf: Replay, idx: jax.Array, priority_n: jax.Array) -> Replay:
    """Set the raw priorities of sampled slots (e.g. |TD error|); tracks the largest for new entries."""
    chex.assert_equal_shape([idx, priority_n])
    priority_n = jnp.maximum(priority_n.astype(jnp.float32), PRIORITY_EPS)
    return buf.replace(priority=buf.priority.at[idx].set(priority_n),
                       max_priority=jnp.maximum(buf.max_priority, jnp.max(priority_n)))


def n_step_window(reward_t, terminated_t, truncated_t, gamma: float):
    """The n-step return of step 0 of a window [n, B]: (return [B], discount [B], last [B]).

    Steps are summed up to and including the first that ended its episode (or all n). `last` is
    that step's index: the return bootstraps from its final observation with `discount` =
    gamma^(last + 1), or 0 when it terminated (a truncated step still bootstraps).
    """
    chex.assert_equal_shape([reward_t, terminated_t, truncated_t])
    n = reward_t.shape[0]
    ended_t = jnp.maximum(terminated_t, truncated_t).astype(jnp.float32)
    # alive_t: no episode end strictly before step t of the window.
    alive_t = jnp.cumprod(jnp.concatenate([jnp.ones_like(ended_t[:1]), 1.0 - ended_t[:-1]]), axis=0)
    gamma_t = jnp.power(gamma, jnp.arange(n, dtype=jnp.float32)).reshape((n,) + (1,) * (reward_t.ndim - 1))
    ret = jnp.sum(alive_t * gamma_t * reward_t, axis=0)
    steps = jnp.sum(alive_t, axis=0)                                  # 1..n steps summed
    last = (steps - 1).astype(jnp.int32)
    terminated_last = jnp.take_along_axis(terminated_t.astype(jnp.float32), last[None], axis=0)[0]
    discount = jnp.power(gamma, steps) * (1.0 - terminated_last)
    return ret, discount, last
