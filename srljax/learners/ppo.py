"""PPO (clipped surrogate) as a loss for the generic learner; `build` is its registry entry."""
from __future__ import annotations

from typing import Optional

import jax.numpy as jnp

from srljax.learners.learner import Learner, LearnerSettings, Model, make_optimizer, weighted_mean
from srljax.learners.models import make_model


def ppo_loss(clip_eps: float = 0.2, vf_coef: float = 0.5, ent_coef: float = 0.01, clip_value: bool = True):
    """The PPO-clip loss over a minibatch with `advantage`, `target`, `value` (old) and `logp` (behaviour)."""

    def loss(model: Model, params, mb, key):
        mean = weighted_mean(mb.get("weight"))
        out, value = model.forward(params, mb)
        logp = model.dist.log_prob(out, mb["action"])
        ratio = jnp.exp(logp - mb["logp"])
        adv = mb["advantage"]
        pg_loss = -mean(jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv))
        v_err = jnp.square(value - mb["target"])
        if clip_value:
            v_clipped = mb["value"] + jnp.clip(value - mb["value"], -clip_eps, clip_eps)
            v_err = jnp.maximum(v_err, jnp.square(v_clipped - mb["target"]))
        v_loss = 0.5 * mean(v_err)
        entropy = mean(model.dist.entropy(out))
        total = pg_loss + vf_coef * v_loss - ent_coef * entropy
        approx_kl = mean((ratio - 1.0) - (logp - mb["logp"]))
        clip_frac = mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))
        return total, {"policy_loss": pg_loss, "value_loss": v_loss, "entropy": entropy,
                       "approx_kl": approx_kl, "clip_frac": clip_frac}

    return loss


def learner_settings(cfg) -> LearnerSettings:
    p = cfg.ppo
    return LearnerSettings(epochs=p.epochs, minibatches=p.minibatches, gamma=p.gamma, gae_lambda=p.gae_lambda,
                           reward_scale=p.reward_scale, normalize_obs=p.normalize_obs, normalize_adv=p.normalize_adv,
                           normalize_value=p.normalize_value, chunk_len=cfg.rollout.chunk_len or None)


def optimizer_for(cfg, num_updates: Optional[int] = None):
    """Adam from `ppo.*`; with `ppo.anneal_lr`, decaying to 0 over `num_updates` batches (default:
    the config's own count) of `epochs x minibatches` gradient steps."""
    p = cfg.ppo
    steps = (num_updates or cfg.num_updates()) * p.epochs * p.minibatches if p.anneal_lr else None
    return make_optimizer(p.lr, p.max_grad_norm, p.adam_eps, steps)


def build(cfg, obs_space, action_space, *, axis_name: Optional[str] = None, grad_reduce=None, loss=None,
          num_updates: Optional[int] = None) -> Learner:
    """The registry's builder: the generic learner with PPO's loss, or any `loss(model, params, mb, key)`."""
    p = cfg.ppo
    loss = loss or ppo_loss(p.clip_eps, p.vf_coef, p.ent_coef, p.clip_value)
    return Learner(make_model(cfg, obs_space, action_space), loss, optimizer_for(cfg, num_updates),
                   learner_settings(cfg), axis_name=axis_name, grad_reduce=grad_reduce, flat_params=True)
