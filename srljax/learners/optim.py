"""Optimiser pieces of the generic learner: `make_optimizer` (Adam with global-norm clipping) and
the one-vector view of parameters and optimiser moments that `Learner(flat_params=True)` uses."""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree


def flatten(params, opt_state):
    """(params, opt_state) with the parameters raveled into one vector and every subtree of the
    optimiser state shaped like them (Adam's moments) raveled alike; and the unravel function.
    Valid for optimisers that treat parameters elementwise or by their global norm (`make_optimizer`'s)."""
    flat, unravel = ravel_pytree(params)
    like = _like(params)
    opt_flat = jax.tree.map(lambda x: ravel_pytree(x)[0] if like(x) else x, opt_state, is_leaf=like)
    return (flat, opt_flat), unravel


def unflatten(unravel, params, opt_state, flat, opt_flat):
    """The inverse of `flatten`, with its `unravel` and the original (params, opt_state) for their
    structure."""
    like = _like(params)
    return unravel(flat), jax.tree.map(lambda orig, x: unravel(x) if like(orig) else x, opt_state, opt_flat,
                                       is_leaf=like)


def _like(params):
    treedef = jax.tree.structure(params)
    return lambda x: x is not None and jax.tree.structure(x) == treedef


def flattenable(params) -> bool:
    """Several leaves of one dtype (a lone array is flat already; mixed dtypes would be promoted)."""
    leaves = jax.tree.leaves(params)
    return len(leaves) > 1 and len({jnp.result_type(x) for x in leaves}) == 1


def make_optimizer(lr: float, max_grad_norm: float, adam_eps: float, anneal_steps: Optional[int]):
    """Adam with global-norm clipping; with `anneal_steps`, the rate decays linearly to 0."""
    rate = optax.linear_schedule(lr, 0.0, anneal_steps) if anneal_steps else lr
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(rate, eps=adam_eps))


def apply_if_finite(optimizer: optax.GradientTransformation, grads, grad_norm, state: optax.ApplyIfFiniteState, params):
    """One optimiser step, or none when a gradient is not finite (then the norm is not either):
    optax.apply_if_finite's behaviour and state, with the step always computed and kept or
    dropped by a select per leaf, which XLA fuses into the step's own elementwise loop (a
    `lax.cond` splits the step from the parameter update: measurably slower for small nets)."""
    finite = jnp.isfinite(grad_norm)
    updates, inner = optimizer.update(grads, state.inner_state, params)
    keep = lambda new, old: jnp.where(finite, new, old)   # noqa: E731
    params = jax.tree.map(keep, optax.apply_updates(params, updates), params)
    inner = jax.tree.map(keep, inner, state.inner_state)
    one = jnp.ones((), jnp.int32)
    state = optax.ApplyIfFiniteState(
        notfinite_count=jnp.where(finite, 0, state.notfinite_count + one), last_finite=finite,
        total_notfinite=jnp.where(finite, state.total_notfinite, state.total_notfinite + one), inner_state=inner)
    return params, state, finite
