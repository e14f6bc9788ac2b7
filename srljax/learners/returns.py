"""Return and value-target pieces of the generic learner (pure jax): GAE over a time-major
sequence, and the bootstrap values of `final_obs` from the values of `obs`."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp


def gae(reward_t, discount_t, value_t, next_value_t, lambda_, cont_t):
    """Generalised advantage estimates over a time-major [T, ...] sequence.

    discount_t = gamma * (1 - terminated_t) scales the bootstrap value `next_value_t` (the value of
    the observation the action led to); cont_t = 1 - (terminated_t or truncated_t) stops the
    recursion at episode ends, so a truncated episode bootstraps but does not leak into the next.
    """
    chex.assert_equal_shape([reward_t, discount_t, value_t, next_value_t, cont_t])
    delta_t = reward_t + discount_t * next_value_t - value_t

    def body(carry, xs):
        delta, disc, cont = xs
        carry = delta + disc * lambda_ * cont * carry
        return carry, carry

    _, adv = jax.lax.scan(body, jnp.zeros_like(delta_t[0]), (delta_t, discount_t, cont_t), reverse=True)
    return adv, adv + value_t


def bootstrap_values(critic, value, batch):
    """V(final_obs_t) [T, N] given value = V(obs_t) [T, N]: where no episode ended, final_obs_t is
    obs_{t+1}, whose value is known, so only the last step and the ended rows need the critic:
    at most 2N rows in the usual case (rollouts shorter than episodes); when more rows ended, one
    full pass over final_obs is made instead. `critic(obs)` maps obs leaves [R, ...] to [R]."""
    T, N = batch["reward"].shape[:2]
    ended = jnp.maximum(batch["terminated"], batch["truncated"]).astype(bool)
    need = ended.at[T - 1].set(True).reshape(-1)                            # [T * N]
    cap = min(2 * N, T * N)

    def few(_):
        (rows,) = jnp.nonzero(need, size=cap, fill_value=0)
        picked = jax.tree.map(lambda x: jnp.asarray(x).reshape((T * N,) + x.shape[2:])[rows], batch["final_obs"])
        boot = jnp.zeros((T * N,), value.dtype).at[rows].set(critic(picked))
        shifted = jnp.concatenate([value[1:], jnp.zeros_like(value[:1])]).reshape(-1)
        return jnp.where(need, boot, shifted).reshape(T, N)

    def every(_):
        return critic(batch["final_obs"])

    return jax.lax.cond(jnp.sum(need) <= cap, few, every, None)
