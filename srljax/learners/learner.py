"""The generic learner: a loss function plus everything around it.

An algorithm is a loss `loss(model, params, minibatch, key) -> (loss, metrics)` (means over the
minibatch). The learner
supplies the rest, identically in fused and distributed mode:

- observation normalisation statistics, folded in from each batch (and merged across devices);
- `prepare`: values of `obs` and `final_obs` under the current parameters, and GAE advantages and
  value targets (an algorithm may bring its own, e.g. V-trace);
- epochs over the batch in minibatches, a gradient step each, gradients averaged across devices
  (`axis_name`) and across trainer processes (`grad_reduce`), clipped, and skipped when not finite.

Minibatches are drawn per env column: each env contributes a random subset of its time steps,
with a permutation keyed by the env's global index. So a batch split over D devices yields the
same minibatches, and the same update, as on one device.

A sample batch is time-major: obs [T, B, ...], action [T, B, ...], reward, terminated, truncated,
logp [T, B], final_obs [T, B, ...] (the observation each action led to, before auto-reset).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from srljax.learners import normalizer
from srljax.learners.normalizer import RunningStats

Batch = Dict[str, Any]
LossFn = Callable[["Model", Any, Batch, jax.Array], Tuple[jax.Array, Dict[str, jax.Array]]]


@struct.dataclass
class LearnerState:
    params: Any
    opt_state: Any
    obs_norm: Optional[RunningStats]
    key: jax.Array
    updates: jax.Array          # batches learned from
    skipped: jax.Array          # gradient steps skipped for non-finite gradients, in all
    consecutive_skips: jax.Array  # gradient steps skipped in a row, up to now


@struct.dataclass
class PolicyParams:
    """What actors and policy workers need to act: network parameters and the obs normaliser."""

    params: Any
    obs_norm: Optional[RunningStats]


@dataclasses.dataclass(frozen=True)
class Model:
    """A network with its action distribution; `apply(params, obs)` normalises nothing."""

    network: Any
    dist: Any

    def apply(self, params, obs):
        return self.network.apply(params, obs)


@dataclasses.dataclass(frozen=True)
class LearnerSettings:
    epochs: int = 4
    minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    reward_scale: float = 1.0
    normalize_obs: bool = False
    normalize_adv: bool = True


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


def gae_prepare(model: Model, params, batch: Batch, settings: LearnerSettings) -> Batch:
    """Add `value`, `advantage` and `target` to a batch, from the current parameters."""
    obs = batch["obs"]
    both = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=0), obs, batch["final_obs"])
    _, values = model.apply(params, both)
    T = batch["reward"].shape[0]
    value_t, next_value_t = values[:T], values[T:]
    terminated = batch["terminated"].astype(jnp.float32)
    ended = jnp.maximum(terminated, batch["truncated"].astype(jnp.float32))
    reward = batch["reward"] * settings.reward_scale
    adv, target = gae(reward, settings.gamma * (1.0 - terminated), value_t, jax.lax.stop_gradient(next_value_t),
                      settings.gae_lambda, 1.0 - ended)
    return {**batch, "value": value_t, "advantage": adv, "target": target}


def _is_stats(x) -> bool:
    return isinstance(x, RunningStats)


class Learner:
    """init/update/act for one loss. Pure and jittable; with `axis_name`, run it under pmap."""

    def __init__(self, model: Model, loss: LossFn, optimizer: optax.GradientTransformation,
                 settings: LearnerSettings, prepare: Callable = gae_prepare, axis_name: Optional[str] = None,
                 grad_reduce: Optional[Callable[[Any], Any]] = None):
        self.model = model
        self.loss = loss
        self.optimizer = optax.apply_if_finite(optimizer, max_consecutive_errors=2**30)
        self.settings = settings
        self.prepare = prepare
        self.axis_name = axis_name
        self.grad_reduce = grad_reduce

    # -- state ---------------------------------------------------------------------------------
    def init(self, key: jax.Array, example_batch: Batch) -> LearnerState:
        key, init_key = jax.random.split(key)
        obs = jax.tree.map(lambda x: x[0, :1], example_batch["obs"])
        params = self.model.network.init(init_key, obs)
        obs_norm = None
        if self.settings.normalize_obs:
            obs_norm = jax.tree.map(lambda x: RunningStats.create(x.shape[2:]), example_batch["obs"])
        zero = jnp.zeros((), jnp.int32)
        return LearnerState(params=params, opt_state=self.optimizer.init(params), obs_norm=obs_norm, key=key,
                            updates=zero, skipped=zero, consecutive_skips=zero)

    @staticmethod
    def policy_params(state: LearnerState) -> PolicyParams:
        return PolicyParams(params=state.params, obs_norm=state.obs_norm)

    # -- acting --------------------------------------------------------------------------------
    def act(self, policy: PolicyParams, obs, key):
        """Sample actions for a batch of observations: (action, logp, value)."""
        out, value = self.model.apply(policy.params, self._norm(policy.obs_norm, obs))
        action = self.model.dist.sample(out, key)
        return action, self.model.dist.log_prob(out, action), value

    @staticmethod
    def _norm(stats, obs):
        if stats is None:
            return obs
        return jax.tree.map(normalizer.normalize, stats, obs, is_leaf=_is_stats)

    # -- learning ------------------------------------------------------------------------------
    def update(self, state: LearnerState, batch: Batch, env_ids: Optional[jax.Array] = None):
        """Learn from one time-major batch; returns (state, metrics averaged over gradient steps).

        `env_ids` [B] are the global indices of the batch's env columns (default 0..B-1); they
        key the minibatch permutations, which is what makes sharded and unsharded updates agree.
        """
        s = self.settings
        obs_norm = state.obs_norm
        if obs_norm is not None:
            obs_norm = jax.tree.map(lambda st, x: normalizer.update(st, x, self.axis_name), obs_norm, batch["obs"],
                                    is_leaf=_is_stats)
        batch = {**batch, "obs": self._norm(obs_norm, batch["obs"]), "final_obs": self._norm(obs_norm, batch["final_obs"])}
        batch = self.prepare(self.model, state.params, batch, s)
        T, B = batch["reward"].shape[:2]
        if T % s.minibatches:
            raise ValueError(f"rollout length {T} does not split into {s.minibatches} minibatches")
        if env_ids is None:
            env_ids = jnp.arange(B)
        key, epoch_key = jax.random.split(state.key)

        def epoch(carry, k):
            # One permutation of the time axis per env column: minibatch m takes T/M steps of each env.
            perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(k, e), T))(env_ids)  # [B, T]
            shuffled = jax.tree.map(lambda x: jnp.take_along_axis(x, perms.T.reshape((T, B) + (1,) * (x.ndim - 2)), 0), batch)
            mbs = jax.tree.map(lambda x: x.reshape((s.minibatches, T // s.minibatches) + x.shape[1:]), shuffled)
            keys = jax.random.split(k, s.minibatches)
            return jax.lax.scan(self._grad_step, carry, (mbs, keys))

        carry = (state.params, state.opt_state)
        (params, opt_state), metrics = jax.lax.scan(epoch, carry, jax.random.split(epoch_key, s.epochs))
        metrics = jax.tree.map(jnp.mean, metrics)
        finite = metrics.pop("grads_finite")
        steps = s.epochs * s.minibatches
        skipped_now = jnp.round(steps * (1.0 - finite)).astype(jnp.int32)
        consecutive = optax.tree_utils.tree_get(opt_state, "notfinite_count")
        state = state.replace(params=params, opt_state=opt_state, obs_norm=obs_norm, key=key,
                              updates=state.updates + 1, skipped=state.skipped + skipped_now,
                              consecutive_skips=jnp.asarray(consecutive, jnp.int32))
        metrics["skipped_steps"] = skipped_now.astype(jnp.float32)
        return state, metrics

    def _standardize(self, x):
        """(x - mean) / std over the minibatch, the statistics taken over every device's share."""
        mean, sq = jnp.mean(x), jnp.mean(x * x)
        if self.axis_name is not None:
            mean, sq = jax.lax.pmean((mean, sq), self.axis_name)
        return (x - mean) / jnp.sqrt(jnp.maximum(sq - mean * mean, 0.0) + 1e-8)

    def _grad_step(self, carry, xs):
        params, opt_state = carry
        mb, key = xs
        if self.settings.normalize_adv and "advantage" in mb:
            mb = {**mb, "advantage": self._standardize(mb["advantage"])}
        grad_fn = jax.value_and_grad(lambda p: self.loss(self.model, p, mb, key), has_aux=True)
        (loss, metrics), grads = grad_fn(params)
        if self.axis_name is not None:
            grads = jax.lax.pmean(grads, self.axis_name)
            metrics = jax.lax.pmean(metrics, self.axis_name)
            loss = jax.lax.pmean(loss, self.axis_name)
        if self.grad_reduce is not None:
            grads = self.grad_reduce(grads)
        finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.global_norm(grads),
                   "grads_finite": finite.astype(jnp.float32)}
        return (params, opt_state), metrics


def make_optimizer(lr: float, max_grad_norm: float, adam_eps: float, anneal_steps: Optional[int]):
    """Adam with global-norm clipping; with `anneal_steps`, the rate decays linearly to 0."""
    rate = optax.linear_schedule(lr, 0.0, anneal_steps) if anneal_steps else lr
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), optax.adam(rate, eps=adam_eps))
