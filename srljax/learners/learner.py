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
Multi-agent batches have an agent axis after B and are learned from as [T, B * A] columns; a
recurrent model (`RecurrentModel`) also needs `first` and `state` and is trained on chunks of
whole columns (see `srljax.learners.recurrent`). With `normalize_value`, the network's value
head predicts targets standardised by running statistics of the targets.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, ClassVar, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from srljax.learners import normalizer
from srljax.learners.normalizer import RunningStats
from srljax.learners.optim import (apply_if_finite, flatten, flattenable, make_optimizer,  # noqa: F401 (re-exported)
                                   unflatten)
from srljax.learners.recurrent import chunk_ids, column_minibatches, merge_agents, to_chunks
from srljax.learners.returns import bootstrap_values, gae  # noqa: F401  (gae re-exported)

Batch = Dict[str, Any]
LossFn = Callable[["Model", Any, Batch, jax.Array], Tuple[jax.Array, Dict[str, jax.Array]]]


def weighted_mean(weight):
    """A loss's mean over a minibatch; with the learner's per-sample `weight` (0: a step not to learn
    from; scaled to mean 1 over the whole minibatch by `Learner._global_weight`), the weighted mean."""
    return jnp.mean if weight is None else (lambda x: jnp.mean(x * weight))


@struct.dataclass
class LearnerState:
    params: Any
    opt_state: Any
    obs_norm: Optional[RunningStats]
    key: jax.Array
    updates: jax.Array          # batches learned from
    skipped: jax.Array          # gradient steps skipped for non-finite gradients, in all
    consecutive_skips: jax.Array  # gradient steps skipped in a row, up to now
    value_norm: Optional[RunningStats] = None  # running statistics of value targets (normalize_value)


@struct.dataclass
class PolicyParams:
    """What actors and policy workers need to act: network parameters and the obs normaliser."""

    params: Any
    obs_norm: Optional[RunningStats]
    value_norm: Optional[RunningStats] = None


@dataclasses.dataclass(frozen=True)
class Model:
    """A network with its action distribution; `apply(params, obs)` normalises nothing.

    `value_stats`: when set, values come out in return units (the head predicts standardised
    targets); `unnormalized`: keys of a dict observation never normalised (masks, flags).
    """

    network: Any
    dist: Any
    value_stats: Optional[RunningStats] = None
    unnormalized: Tuple[str, ...] = ()
    recurrent: ClassVar[bool] = False

    def init(self, key, obs):
        """Parameters from one example step, obs leaves [N, ...]."""
        return self.network.init(key, obs)

    def apply(self, params, obs):
        out, value = self.network.apply(params, obs)
        return out, self._value_out(value)

    def forward(self, params, batch):
        """(policy output, value) over a [T, N] (mini)batch."""
        return self.apply(params, batch["obs"])

    def values(self, params, batch):
        """(V(obs_t), V(final_obs_t)), each [T, N], for advantage estimation.

        With `batch["obs_value"]` (V(obs_t) under these very parameters, e.g. from a fused
        rollout) only the bootstrap rows of `final_obs` get a pass of their own (`bootstrap_values`)."""
        if "obs_value" in batch:
            value = batch["obs_value"]
            return value, bootstrap_values(lambda obs: self.apply(params, obs)[1], value, batch)
        both = jax.tree.map(lambda a, b: jnp.concatenate([a, b], axis=0), batch["obs"], batch["final_obs"])
        _, values = self.apply(params, both)
        T = batch["reward"].shape[0]
        return values[:T], values[T:]

    def _value_out(self, value):
        if self.value_stats is None:
            return value
        return value * self.value_stats.std + self.value_stats.mean


@dataclasses.dataclass(frozen=True)
class RecurrentModel(Model):
    """A recurrent policy with a feedforward critic. `network.__call__(obs, first, state)` is
    time-major (obs leaves [T, N, ...], first [T, N], state [N, S]) and returns (out, value,
    state after the last step); `network.value(obs)` is the critic alone."""

    state_size: int = 0
    recurrent: ClassVar[bool] = True

    def initial_state(self, n: int) -> jax.Array:
        return jnp.zeros((n, self.state_size), jnp.float32)

    def init(self, key, obs):
        n = jax.tree.leaves(obs)[0].shape[0]
        one = jax.tree.map(lambda x: x[None], obs)
        return self.network.init(key, one, jnp.ones((1, n), jnp.float32), self.initial_state(n))

    def step(self, params, obs, state, first, value: bool = True):
        """One step of N columns: obs leaves [N, ...], state [N, S], first [N] -> (out, value, state).

        With `value=False` the critic is not evaluated (value is None): acting needs only the
        policy, and the learner recomputes values when it prepares a batch."""
        one = jax.tree.map(lambda x: x[None], obs)
        first = first[None].astype(jnp.float32)
        if not value:
            out, state = self.network.apply(params, one, first, state, method="policy")
            return out[0], None, state
        out, v, state = self.network.apply(params, one, first, state)
        return out[0], self._value_out(v[0]), state

    def forward(self, params, batch):
        """Over chunks: batch["state"] [1, N, S] is the carry before step 0 of each column."""
        out, value, _ = self.network.apply(params, batch["obs"], batch["first"].astype(jnp.float32),
                                           batch["state"][0])
        return out, self._value_out(value)

    def values(self, params, batch):
        """(V(obs_t), V(final_obs_t)) with the critic run over `obs` and only the bootstrap rows of
        `final_obs`: where no episode ended, final_obs_t is obs_{t+1}, whose value is already
        known, so only the last step and the ended rows need a pass of their own. That is at most
        2N rows in the usual case (rollouts shorter than episodes) and saves nearly half the
        critic's cost; when more rows ended, one full pass over final_obs is made instead."""
        critic = lambda obs: self.network.apply(params, obs, method="value")
        value = critic(batch["obs"])                                            # [T, N]
        next_value = bootstrap_values(critic, value, batch)
        return self._value_out(value), self._value_out(next_value)

    def apply(self, params, obs):
        raise TypeError("a recurrent model has no stateless apply: use step(params, obs, state, first)")


@dataclasses.dataclass(frozen=True)
class LearnerSettings:
    epochs: int = 4
    minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    reward_scale: float = 1.0
    normalize_obs: bool = False
    normalize_adv: bool = True
    normalize_value: bool = False   # standardise value targets by their running statistics
    chunk_len: Optional[int] = None  # recurrent models: steps per training chunk (None: the whole rollout)


def gae_prepare(model: Model, params, batch: Batch, settings: LearnerSettings) -> Batch:
    """Add `value`, `advantage` and `target` to a batch, from the current parameters."""
    value_t, next_value_t = model.values(params, batch)
    terminated = batch["terminated"].astype(jnp.float32)
    ended = jnp.maximum(terminated, batch["truncated"].astype(jnp.float32))
    reward = batch["reward"] * settings.reward_scale
    adv, target = gae(reward, settings.gamma * (1.0 - terminated), value_t, jax.lax.stop_gradient(next_value_t),
                      settings.gae_lambda, 1.0 - ended)
    return {**batch, "value": value_t, "advantage": adv, "target": target}


def _is_stats(x) -> bool:
    return x is None or isinstance(x, RunningStats)


def _standardize_by(stats: RunningStats, x):
    return (x - stats.mean) / stats.std


class Learner:
    """init/update/act for one loss. Pure and jittable; with `axis_name`, run it per device under
    `shard_map` (fused mode) so gradients and statistics are averaged over that mesh axis.

    `flat_params`: for the gradient steps of an update, hold the parameters and the optimiser's
    moments as one vector each (raveled once per update, unraveled at its end; the state keeps
    its tree layout). Only for optimisers that treat parameters elementwise or by their global
    norm, such as `make_optimizer`'s Adam with clipping: one fused optimiser step instead of one
    per parameter array."""

    def __init__(self, model: Model, loss: LossFn, optimizer: optax.GradientTransformation,
                 settings: LearnerSettings, prepare: Callable = gae_prepare, axis_name: Optional[str] = None,
                 grad_reduce: Optional[Callable[[Any], Any]] = None, flat_params: bool = False):
        self.model = model
        self.flat_params = flat_params
        self.loss = loss
        self.inner_optimizer = optimizer
        self.optimizer = optax.apply_if_finite(optimizer, max_consecutive_errors=2**30)
        self.settings = settings
        self.prepare = prepare
        self.axis_name = axis_name
        self.grad_reduce = grad_reduce

    # -- state ---------------------------------------------------------------------------------
    def init(self, key: jax.Array, example_batch: Batch) -> LearnerState:
        key, init_key = jax.random.split(key)
        example_batch, _ = merge_agents(example_batch)
        obs = jax.tree.map(lambda x: x[0, :1], example_batch["obs"])
        params = self.model.init(init_key, obs)
        obs_norm = None
        if self.settings.normalize_obs:
            obs_norm = jax.tree.map(lambda x: RunningStats.create(x.shape[2:]), example_batch["obs"])
            if isinstance(obs_norm, dict) and self.model.unnormalized:
                obs_norm = {k: None if k in self.model.unnormalized else v for k, v in obs_norm.items()}
        value_norm = RunningStats.create(()) if self.settings.normalize_value else None
        zero = jnp.zeros((), jnp.int32)
        return LearnerState(params=params, opt_state=self.optimizer.init(params), obs_norm=obs_norm, key=key,
                            updates=zero, skipped=zero, consecutive_skips=zero, value_norm=value_norm)

    @staticmethod
    def policy_params(state: LearnerState) -> PolicyParams:
        return PolicyParams(params=state.params, obs_norm=state.obs_norm, value_norm=state.value_norm)

    def _valued(self, value_norm: Optional[RunningStats]) -> Model:
        """The model with values in return units (itself when values are not normalised)."""
        return self.model if value_norm is None else dataclasses.replace(self.model, value_stats=value_norm)

    # -- acting --------------------------------------------------------------------------------
    def act(self, policy: PolicyParams, obs, key):
        """Sample actions for a batch of observations: (action, logp, value)."""
        out, value = self._valued(policy.value_norm).apply(policy.params, self._norm(policy.obs_norm, obs))
        action = self.model.dist.sample(out, key)
        return action, self.model.dist.log_prob(out, action), value

    def act_step(self, policy: PolicyParams, obs, state, first, key, value: bool = True):
        """A recurrent model's step: obs leaves [N, ...], state [N, S], first [N] (1: an episode
        starts here, the carry is reset) -> (action, logp, value, state). `value=False` skips the
        critic (value is then zeros: `update` recomputes values from the batch's observations)."""
        model = self._valued(policy.value_norm)
        out, v, state = model.step(policy.params, self._norm(policy.obs_norm, obs), state, first, value=value)
        value = jnp.zeros(state.shape[:1], jnp.float32) if v is None else v
        action = self.model.dist.sample(out, key)
        return action, self.model.dist.log_prob(out, action), value, state

    def initial_state(self, n: int):
        return self.model.initial_state(n)

    @staticmethod
    def _norm(stats, obs):
        if stats is None:
            return obs
        return jax.tree.map(lambda st, x: x if st is None else normalizer.normalize(st, x), stats, obs,
                            is_leaf=_is_stats)

    # -- learning ------------------------------------------------------------------------------
    def update(self, state: LearnerState, batch: Batch, env_ids: Optional[jax.Array] = None):
        """Learn from one time-major batch; returns (state, metrics averaged over gradient steps).

        `env_ids` [B] are the global indices of the batch's env columns (default 0..B-1); they
        key the minibatch permutations, which is what makes sharded and unsharded updates agree.
        """
        s = self.settings
        batch, env_ids = merge_agents(batch, env_ids)
        # The dataflow's per-sample weight: 0 for samples not to learn from (a scripted opponent's
        # step, an empty agent slot), kept out of the loss and the advantage statistics.
        weight = batch.get("learn")
        batch = {k: v for k, v in batch.items() if k != "learn"}
        if weight is not None:
            batch = {**batch, "weight": weight.astype(jnp.float32)}
        obs_norm = state.obs_norm
        if obs_norm is not None:
            obs_norm = jax.tree.map(lambda st, x: st if st is None else normalizer.update(st, x, self.axis_name),
                                    obs_norm, batch["obs"], is_leaf=_is_stats)
        if obs_norm is not None:      # values of the rollout's own obs hold only under unchanged statistics
            batch = {k: v for k, v in batch.items() if k != "obs_value"}
        batch = {**batch, "obs": self._norm(obs_norm, batch["obs"]), "final_obs": self._norm(obs_norm, batch["final_obs"])}
        batch = self.prepare(self._valued(state.value_norm), state.params, batch, s)
        batch = {k: v for k, v in batch.items() if k != "obs_value"}
        value_norm = state.value_norm
        if value_norm is not None:
            value_norm = normalizer.update(value_norm, batch["target"], self.axis_name)
            batch = {**batch, "value": _standardize_by(value_norm, batch["value"]),
                     "target": _standardize_by(value_norm, batch["target"])}
        key, epoch_key = jax.random.split(state.key)
        carry = (state.params, state.opt_state)
        unravel = lambda p: p       # noqa: E731
        flat = self.flat_params and flattenable(state.params)
        if flat:                     # one vector of parameters (and one of each optimiser moment)
            carry, unravel = flatten(*carry)
        grad_step = functools.partial(self._grad_step, unravel)
        if self.model.recurrent:
            T, N = batch["reward"].shape[:2]
            L = s.chunk_len or T
            batch = to_chunks(batch, L)
            ids = chunk_ids(env_ids, N, T // L)

            def epoch(carry, k):
                mb_key, step_key = jax.random.split(k)
                mbs = column_minibatches(batch, mb_key, s.minibatches, ids)
                return jax.lax.scan(grad_step, carry, (mbs, jax.random.split(step_key, s.minibatches)))
        else:
            epoch = self._time_epoch(batch, env_ids, grad_step)
        (params, opt_state), metrics = jax.lax.scan(epoch, carry, jax.random.split(epoch_key, s.epochs))
        if flat:
            params, opt_state = unflatten(unravel, state.params, state.opt_state, params, opt_state)
        metrics = jax.tree.map(jnp.mean, metrics)
        finite = metrics.pop("grads_finite")
        steps = s.epochs * s.minibatches
        skipped_now = jnp.round(steps * (1.0 - finite)).astype(jnp.int32)
        consecutive = optax.tree_utils.tree_get(opt_state, "notfinite_count")
        state = state.replace(params=params, opt_state=opt_state, obs_norm=obs_norm, key=key,
                              updates=state.updates + 1, skipped=state.skipped + skipped_now,
                              consecutive_skips=jnp.asarray(consecutive, jnp.int32), value_norm=value_norm)
        metrics["skipped_steps"] = skipped_now.astype(jnp.float32)
        if value_norm is not None:
            metrics["value_target_mean"], metrics["value_target_std"] = value_norm.mean, value_norm.std
        return state, metrics

    def _time_epoch(self, batch: Batch, env_ids: Optional[jax.Array], grad_step):
        """Feedforward models: each minibatch takes T/M random steps of every env column, as
        [T/M * B] rows (leaves [rows, ...])."""
        s = self.settings
        T, B = batch["reward"].shape[:2]
        if T % s.minibatches:
            raise ValueError(f"rollout length {T} does not split into {s.minibatches} minibatches")
        if env_ids is None:
            env_ids = jnp.arange(B)

        def epoch(carry, k):
            # One permutation of the time axis per env column: minibatch m takes T/M steps of each env.
            perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(k, e), T))(env_ids)  # [B, T]
            shuffled = jax.tree.map(lambda x: jnp.take_along_axis(x, perms.T.reshape((T, B) + (1,) * (x.ndim - 2)), 0), batch)
            # Rows flattened: a minibatch is [T/M * B] samples (a [T/M, B] one costs XLA's CPU
            # backend a relayout around each dot, in the forward and backward pass).
            mbs = jax.tree.map(lambda x: x.reshape((s.minibatches, T // s.minibatches * B) + x.shape[2:]), shuffled)
            keys = jax.random.split(k, s.minibatches)
            return jax.lax.scan(grad_step, carry, (mbs, keys))

        return epoch

    def _standardize(self, x, weight=None):
        """(x - mean) / std over the minibatch (weighted: `weight` as `_global_weight` leaves it),
        the statistics taken over every device's share."""
        w = 1.0 if weight is None else weight
        mean, sq = jnp.mean(x * w), jnp.mean(x * x * w)
        if self.axis_name is not None:
            mean, sq = jax.lax.pmean((mean, sq), self.axis_name)
        return (x - mean) / jnp.sqrt(jnp.maximum(sq - mean * mean, 0.0) + 1e-8)

    def _global_weight(self, weight):
        """Per-sample weights scaled to mean 1 over the whole minibatch (all devices' shares, all
        trainers'): each share's mean of `x * weight`, averaged as gradients are, is then the weighted
        mean over all samples (shares' own weighted means, averaged, would not be). All 0 stay 0."""
        mean = jnp.mean(weight)
        if self.axis_name is not None:
            mean = jax.lax.pmean(mean, self.axis_name)
        if self.grad_reduce is not None:
            mean = self.grad_reduce(mean)
        return jnp.where(mean > 0.0, weight / jnp.where(mean > 0.0, mean, 1.0), 0.0)

    def _grad_step(self, unravel, carry, xs):
        params, opt_state = carry
        mb, key = xs
        if "weight" in mb:
            mb = {**mb, "weight": self._global_weight(mb["weight"])}
        if self.settings.normalize_adv and "advantage" in mb:
            mb = {**mb, "advantage": self._standardize(mb["advantage"], mb.get("weight"))}
        grad_fn = jax.value_and_grad(lambda p: self.loss(self.model, unravel(p), mb, key), has_aux=True)
        (loss, metrics), grads = grad_fn(params)
        if self.axis_name is not None:
            grads = jax.lax.pmean(grads, self.axis_name)
            metrics = jax.lax.pmean(metrics, self.axis_name)
            loss = jax.lax.pmean(loss, self.axis_name)
        if self.grad_reduce is not None:
            grads = self.grad_reduce(grads)
        grad_norm = optax.tree.norm(grads)
        params, opt_state, finite = apply_if_finite(self.inner_optimizer, grads, grad_norm, opt_state, params)
        metrics = {**metrics, "loss": loss, "grad_norm": grad_norm, "grads_finite": finite.astype(jnp.float32)}
        return (params, opt_state), metrics
