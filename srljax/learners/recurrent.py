"""Multi-agent and recurrent batches for the generic learner.

Multi-agent: agents share one set of weights, so a batch [T, B, A, ...] is learned from as
[T, B * A, ...]: every (env, agent) pair is one column with its own rewards, values and
advantages. Per-env fields ([T, B]: terminated, truncated, first) are broadcast to the agents.

Recurrent: a batch also carries `first` [T, B(, A)] (1 where an episode starts: the policy's carry
is zeroed before that step) and `state` [T / L, B(, A), S], the policy's carry at the start of
each chunk of L steps (as the actor held it, before any reset at that step). After advantages are
computed over the whole rollout, the batch is cut into chunks: [T, N, ...] -> [L, T / L * N, ...],
`state` -> [1, T / L * N, S] (its one "time" step keeps every field's columns on axis 1), and
minibatches take whole chunks (columns), never a slice of time.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import chex
import jax
import jax.numpy as jnp

Batch = Dict[str, Any]


# -------------------------------------------------------------------------------- multi-agent

def merge_agents(batch: Batch, env_ids: Optional[jax.Array] = None) -> Tuple[Batch, Optional[jax.Array]]:
    """[T, B, A, ...] -> [T, B * A, ...] (column b * A + a); [T, B] per-env fields broadcast over A.

    A batch is multi-agent when its `reward` has rank 3; otherwise it is returned unchanged.
    `env_ids` [B] become [B * A] column ids (e * A + a), so minibatch keys stay distinct.
    """
    reward = batch["reward"]
    if reward.ndim != 3:
        return batch, env_ids
    B, A = reward.shape[1:3]

    def merge(x):
        if x.ndim >= 3 and x.shape[1:3] == (B, A):
            return x.reshape(x.shape[:1] + (B * A,) + x.shape[3:])
        if x.ndim == 2 and x.shape[1] == B:
            return jnp.repeat(x, A, axis=1)
        raise ValueError(f"multi-agent batch field of shape {x.shape} is neither [T, {B}, {A}, ...] nor [T, {B}]")

    out = jax.tree.map(merge, batch)
    if env_ids is not None:
        env_ids = (env_ids[:, None] * A + jnp.arange(A)[None, :]).reshape(-1)
    return out, env_ids


# -------------------------------------------------------------------------------- chunks

def to_chunks(batch: Batch, chunk_len: int) -> Batch:
    """Cut a prepared [T, N, ...] batch into chunks: [L, K * N, ...] with K = T / L; column k * N + n
    is chunk k of column n. `state` [K, N, S] becomes [1, K * N, S]."""
    T, N = batch["reward"].shape[:2]
    L = chunk_len
    if T % L:
        raise ValueError(f"rollout length {T} does not split into chunks of {L} steps")
    K = T // L

    def cut(x):
        chex.assert_axis_dimension(x, 0, T)
        x = x.reshape((K, L) + x.shape[1:])
        x = jnp.swapaxes(x, 0, 1)
        return x.reshape((L, K * N) + x.shape[3:])

    state = batch["state"]
    chex.assert_shape(state, (K, N, None))
    rest = {k: v for k, v in batch.items() if k != "state"}
    out = jax.tree.map(cut, rest)
    out["state"] = state.reshape((1, K * N) + state.shape[2:])
    return out


def chunk_ids(env_ids: Optional[jax.Array], n: int, chunks: int) -> jax.Array:
    """Global ids of the columns `to_chunks` makes (column k * n + c is chunk k of column c): env
    column e's chunk k is e * chunks + k. `env_ids` [n]: the batch's global column ids (default 0..n-1)."""
    env_ids = jnp.arange(n) if env_ids is None else env_ids
    return (env_ids[None, :] * chunks + jnp.arange(chunks)[:, None]).reshape(-1)


def column_minibatches(batch: Batch, key: jax.Array, minibatches: int, ids: Optional[jax.Array] = None) -> Batch:
    """Deal the columns (axis 1 of every leaf) into minibatches: leaves [M, L, N / M, ...].

    The deal is stratified by global column id (`ids`, default 0..N-1): the columns with ids
    M j .. M j + M - 1 go one to each minibatch, in a random order keyed by (`key`, j). So a
    batch whose columns are split over devices in contiguous id ranges (fused mode's env columns,
    each a multiple of M columns) deals every device the same share of each minibatch, and the
    devices together hold exactly the minibatches one device would: sharded and unsharded
    updates agree. Within a minibatch the columns keep their id order."""
    N = batch["reward"].shape[1]
    if N % minibatches:
        raise ValueError(f"{N} chunks do not split into {minibatches} minibatches")
    M = minibatches
    ids = jnp.arange(N) if ids is None else ids
    draws = jax.vmap(lambda j: jax.random.uniform(jax.random.fold_in(key, j), (M,)))(ids // M)     # [N, M]
    mine = jnp.take_along_axis(draws, (ids % M)[:, None], axis=1)                                  # [N, 1]
    which = jnp.sum(draws < mine, axis=1)                         # the column's minibatch: a permutation per block
    perm = jnp.argsort(which * N + jnp.argsort(jnp.argsort(ids)))          # by minibatch, then by id

    def split(x):
        x = jnp.take(x, perm, axis=1)
        x = x.reshape((x.shape[0], minibatches, N // minibatches) + x.shape[2:])
        return jnp.swapaxes(x, 0, 1)

    return jax.tree.map(split, batch)
