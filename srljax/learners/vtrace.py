"""V-trace (IMPALA, Espeholt et al. 2018): off-policy value targets and policy-gradient advantages.

Plugged into the generic learner as a `prepare` (targets from the current parameters, importance
weights against the behaviour log-probs in the batch) and a loss. Episode ends follow the batch
layout: `terminated` stops bootstrapping, `truncated` bootstraps from the value of `final_obs`.
"""
from __future__ import annotations

from typing import Optional

import chex
import jax
import jax.numpy as jnp

from srljax.learners.learner import Batch, Learner, LearnerSettings, Model, weighted_mean


def vtrace(value_t, next_value_t, reward_t, discount_t, cont_t, log_rho_t, lambda_=1.0,
           rho_clip=1.0, c_clip=1.0, pg_rho_clip=1.0):
    """V-trace targets `vs_t` and policy-gradient advantages over time-major [T, ...] arrays.

    value_t: V(x_t); next_value_t: V of the observation the action led to (before auto-reset);
    discount_t: gamma * (1 - terminated_t); cont_t: 1 - (terminated_t or truncated_t);
    log_rho_t: log pi(a_t|x_t) - log mu(a_t|x_t).
    """
    chex.assert_equal_shape([value_t, next_value_t, reward_t, discount_t, cont_t, log_rho_t])
    rho_t = jnp.exp(log_rho_t)
    clipped_rho_t = jnp.minimum(rho_clip, rho_t)
    c_t = lambda_ * jnp.minimum(c_clip, rho_t)
    delta_t = clipped_rho_t * (reward_t + discount_t * next_value_t - value_t)

    def body(acc, xs):
        delta, disc, cont, c = xs
        acc = delta + disc * cont * c * acc
        return acc, acc

    _, acc_t = jax.lax.scan(body, jnp.zeros_like(value_t[0]), (delta_t, discount_t, cont_t, c_t), reverse=True)
    vs_t = value_t + acc_t
    # The target after step t: vs_{t+1} inside an episode, V(final obs) at its end or the rollout's.
    vs_next_t = jnp.concatenate([vs_t[1:], next_value_t[-1:]], axis=0)
    vs_next_t = cont_t * vs_next_t + (1.0 - cont_t) * next_value_t
    pg_adv_t = jnp.minimum(pg_rho_clip, rho_t) * (reward_t + discount_t * vs_next_t - value_t)
    return jax.lax.stop_gradient(vs_t), jax.lax.stop_gradient(pg_adv_t)


def vtrace_prepare(rho_clip: float = 1.0, c_clip: float = 1.0):
    """A learner `prepare` adding `value`, `target` (vs) and `advantage` from the current parameters."""

    def prepare(model: Model, params, batch: Batch, settings: LearnerSettings) -> Batch:
        value_t, next_value_t = model.values(params, batch)
        out_t, _ = model.forward(params, batch)
        log_rho_t = model.dist.log_prob(out_t, batch["action"]) - batch["logp"]
        terminated = batch["terminated"].astype(jnp.float32)
        ended = jnp.maximum(terminated, batch["truncated"].astype(jnp.float32))
        vs_t, adv_t = vtrace(value_t, next_value_t, batch["reward"] * settings.reward_scale,
                             settings.gamma * (1.0 - terminated), 1.0 - ended, log_rho_t,
                             settings.gae_lambda, rho_clip, c_clip, rho_clip)
        return {**batch, "value": value_t, "target": vs_t, "advantage": adv_t}

    return prepare


def vtrace_loss(vf_coef: float = 0.5, ent_coef: float = 0.01):
    """IMPALA's loss: -logp * advantage, squared error to the V-trace target, entropy bonus."""

    def loss(model: Model, params, mb, key):
        mean = weighted_mean(mb.get("weight"))      # 0: a step not to learn from (absent agent, scripted opponent)
        out, value = model.forward(params, mb)
        logp = model.dist.log_prob(out, mb["action"])
        pg_loss = -mean(logp * mb["advantage"])
        v_loss = 0.5 * mean(jnp.square(value - mb["target"]))
        entropy = mean(model.dist.entropy(out))
        approx_kl = mean(mb["logp"] - logp)
        return pg_loss + vf_coef * v_loss - ent_coef * entropy, {
            "policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy, "approx_kl": approx_kl}

    return loss


def build(cfg, obs_space, action_space, *, axis_name: Optional[str] = None, grad_reduce=None, loss=None,
          num_updates: Optional[int] = None) -> Learner:
    """The registry's builder: the generic learner with V-trace targets (`vtrace.*`), the config's
    network and `ppo.*` optimiser and epochs; a custom `loss` replaces IMPALA's (targets stay)."""
    from srljax.learners.models import make_model
    from srljax.learners.ppo import learner_settings, optimizer_for

    p = cfg.ppo
    return Learner(make_model(cfg, obs_space, action_space), loss or vtrace_loss(p.vf_coef, p.ent_coef),
                   optimizer_for(cfg, num_updates), learner_settings(cfg),
                   prepare=vtrace_prepare(cfg.vtrace.rho_clip, cfg.vtrace.c_clip), axis_name=axis_name,
                   grad_reduce=grad_reduce, flat_params=True)
