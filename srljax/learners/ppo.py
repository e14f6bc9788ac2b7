"""PPO (clipped surrogate) as a loss for the generic learner, and `make_algorithm` for configs."""
from __future__ import annotations

from typing import Optional

import jax.numpy as jnp

from srljax.learners import distributions
from srljax.learners.learner import Learner, LearnerSettings, Model, RecurrentModel, make_optimizer
from srljax.learners.networks import ActorCritic


def weighted_mean(weight):
    """The mean over a minibatch, or, with per-sample `weight` (the learner's `weight` field: 0 for
    absent agent slots), the mean over the samples that count."""
    if weight is None:
        return jnp.mean
    return lambda x: jnp.sum(x * weight) / jnp.maximum(jnp.sum(weight), 1.0)


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


def make_model(cfg, obs_space, action_space) -> Model:
    """An MLP actor-critic for array observations; for the entity-dict observations of
    hide-and-seek, the recurrent entity-attention network (`network.hidden` = [embed, hidden])."""
    dist = distributions.for_space(action_space)
    if isinstance(obs_space, dict):
        from srljax.learners.entity_net import make_entity_network, unnormalized_keys
        network = make_entity_network(dist.nvec, cfg.network.hidden)
        return RecurrentModel(network=network, dist=dist, unnormalized=unnormalized_keys(obs_space),
                              state_size=network.state_size)
    shape = obs_space.shape
    network = ActorCritic(dist=dist, obs_ndim=len(shape), hidden=tuple(cfg.network.hidden),
                          activation=cfg.network.activation)
    return Model(network=network, dist=dist)


def learner_settings(cfg) -> LearnerSettings:
    p = cfg.ppo
    return LearnerSettings(epochs=p.epochs, minibatches=p.minibatches, gamma=p.gamma, gae_lambda=p.gae_lambda,
                           reward_scale=p.reward_scale, normalize_obs=p.normalize_obs, normalize_adv=p.normalize_adv,
                           normalize_value=p.normalize_value, chunk_len=p.chunk_len or None)


def make_algorithm(cfg, obs_space, action_space, axis_name: Optional[str] = None, grad_reduce=None,
                   loss=None, num_updates: Optional[int] = None) -> Learner:
    """The learner a config asks for: PPO by default, or any `loss(model, params, mb, key)`.

    `num_updates` (batches over the run) sets the learning-rate annealing horizon when
    `ppo.anneal_lr` is on; it defaults to the config's own count.
    """
    p = cfg.ppo
    model = make_model(cfg, obs_space, action_space)
    steps = None
    if p.anneal_lr:
        steps = (num_updates or cfg.num_updates()) * p.epochs * p.minibatches
    optimizer = make_optimizer(p.lr, p.max_grad_norm, p.adam_eps, steps)
    loss = loss or ppo_loss(p.clip_eps, p.vf_coef, p.ent_coef, p.clip_value)
    return Learner(model, loss, optimizer, learner_settings(cfg), axis_name=axis_name, grad_reduce=grad_reduce)
