"""SAC: soft actor-critic for continuous (Box) actions, learned from replay; `build` is its registry entry.

The parts are pure functions, time-indexed as in rlax (`_tm1`: the transition's first step, `_t`:
the step it bootstraps from):

- `squashed_sample`, `squashed_log_prob`: a tanh-squashed diagonal Gaussian. The policy samples
  u ~ N(mean, std) and acts a = tanh(u) in [-1, 1]; log pi(a) = log N(u) - sum log(1 - tanh(u)^2).
  The env gets `rescale(a)` in its Box bounds (an affine map; its constant log-Jacobian is left out
  of the entropy, so the temperature's target does not depend on the bounds);
- `soft_target`: r + discount * (min_k Q_target_k(s', a') - alpha * log pi(a' | s')), twin critics;
- `SACLearner`: one gradient step updates the twin critics, then the actor against the updated
  critics, then log alpha toward the target entropy (default -action_dim), then the target critics
  by Polyak averaging with weight `tau`.

Buffer actions are the env's (rescaled); the critics see them mapped back to [-1, 1].
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from srljax.learners.learner import make_optimizer
from srljax.learners.networks import MLP, obs_rank
from srljax.learners.offpolicy import ReplaySettings, average, flatten_obs, polyak

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
_LOG_2PI = float(np.log(2.0 * np.pi))


def squashed_sample(key, mean, log_std):
    """u ~ N(mean, exp(log_std)); returns (tanh(u), u)."""
    u = mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
    return jnp.tanh(u), u


def squashed_log_prob(u, mean, log_std):
    """log density of a = tanh(u) in [-1, 1]^A, summed over the last axis.

    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), stable for large |u|."""
    z = (u - mean) * jnp.exp(-log_std)
    gauss = -0.5 * (z * z + _LOG_2PI) - log_std
    log_det = 2.0 * (jnp.log(2.0) - u - jax.nn.softplus(-2.0 * u))
    return jnp.sum(gauss - log_det, axis=-1)


def soft_target(q_t_target_k, logp_t, r_tm1, discount_tm1, alpha):
    """r + discount * (min over the critics of Q_target(s_t, a_t) - alpha * log pi(a_t | s_t)); q [K, N]."""
    chex.assert_rank(q_t_target_k, 2)
    chex.assert_equal_shape([logp_t, r_tm1, discount_tm1])
    return r_tm1 + discount_tm1 * (jnp.min(q_t_target_k, axis=0) - alpha * logp_t)


class Actor(nn.Module):
    """An MLP to the mean and log std (squashed into [LOG_STD_MIN, LOG_STD_MAX]) of u."""

    action_dim: int
    hidden: Sequence[int]
    activation: str
    init_scheme: str = "orthogonal"

    @nn.compact
    def __call__(self, x):
        h = MLP(self.hidden, self.activation, self.init_scheme, name="torso")(x)
        mean = nn.Dense(self.action_dim, name="mean")(h)
        log_std = jnp.tanh(nn.Dense(self.action_dim, name="log_std")(h))
        return mean, LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1.0)


class Critic(nn.Module):
    """Q(s, a): an MLP over [s, a] to one number."""

    hidden: Sequence[int]
    activation: str
    init_scheme: str = "orthogonal"

    @nn.compact
    def __call__(self, x, a):
        h = MLP(self.hidden, self.activation, self.init_scheme, name="torso")(jnp.concatenate([x, a], axis=-1))
        return nn.Dense(1, name="q")(h)[..., 0]


def twin(num: int, hidden: Sequence[int], activation: str, init: str = "orthogonal") -> nn.Module:
    """`num` critics with their own parameters, evaluated as one batched call: [K, N]."""
    return nn.vmap(Critic, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=None,
                   axis_size=num)(hidden, activation, init)


@struct.dataclass
class SACState:
    params: Any               # {"actor", "critic"}
    target_critic: Any
    log_alpha: jax.Array
    opt_state: Any            # {"actor", "critic", "alpha"}
    key: jax.Array            # the updates' own randomness (next actions, policy samples)
    updates: jax.Array        # gradient steps taken


@dataclasses.dataclass(frozen=True)
class SACSettings:
    tau: float                # target critics <- tau * critics + (1 - tau) * target critics, every step
    init_alpha: float
    target_entropy: float
    learn_alpha: bool
    obs_ndim: Any             # rank of one observation (`networks.obs_rank`)


class SACLearner:
    """init/act/update of SAC; pure and jittable. With `axis_name` / `grad_reduce`, the critics', the
    actor's and the temperature's gradients are averaged over devices / trainer processes (each
    device draws its own policy noise for its share of the batch)."""

    metric_keys = ("loss", "actor_loss", "alpha", "entropy", "q_mean", "td_abs")

    def __init__(self, actor: Actor, critic: nn.Module, bounds, optimizers, settings: SACSettings,
                 replay: ReplaySettings, axis_name: Optional[str] = None, grad_reduce: Optional[Callable] = None):
        """`bounds`: (low, high) of the env's Box; `optimizers`: (actor and critics, log alpha)."""
        self.axis_name, self.grad_reduce = axis_name, grad_reduce
        self.actor, self.critic, self.replay, self.settings = actor, critic, replay, settings
        low, high = (np.asarray(b, np.float32) for b in bounds)
        self.mid, self.half = (high + low) / 2.0, (high - low) / 2.0
        self.optimizer, self.alpha_optimizer = optimizers

    def _x(self, obs):
        return flatten_obs(obs, self.settings.obs_ndim)

    def init(self, key: jax.Array, example_obs) -> SACState:
        actor_key, critic_key, key = jax.random.split(key, 3)
        x = self._x(example_obs)
        a = jnp.zeros(x.shape[:-1] + (self.mid.size,), jnp.float32)
        params = {"actor": self.actor.init(actor_key, x), "critic": self.critic.init(critic_key, x, a)}
        log_alpha = jnp.asarray(np.log(self.settings.init_alpha), jnp.float32)
        opt = {"actor": self.optimizer.init(params["actor"]), "critic": self.optimizer.init(params["critic"]),
               "alpha": self.alpha_optimizer.init(log_alpha)}
        return SACState(params=params, target_critic=params["critic"], log_alpha=log_alpha, opt_state=opt,
                        key=key, updates=jnp.zeros((), jnp.int32))

    def rescale(self, a):
        """[-1, 1] -> the env's bounds."""
        return self.mid + self.half * a

    def policy(self, actor_params, x, key):
        """(a in [-1, 1] [N, A], log pi(a) [N])."""
        mean, log_std = self.actor.apply(actor_params, x)
        a, u = squashed_sample(key, mean, log_std)
        return a, squashed_log_prob(u, mean, log_std)

    def act(self, params, obs_b, key: jax.Array, env_steps) -> jax.Array:
        """Env actions [B, A]: uniform in the bounds before `learning_starts`, then sampled from the policy."""
        policy_key, random_key = jax.random.split(key)
        a, _ = self.policy(params["actor"], self._x(obs_b), policy_key)
        uniform = jax.random.uniform(random_key, a.shape, a.dtype, -1.0, 1.0)
        return self.rescale(jnp.where(env_steps < self.replay.learning_starts, uniform, a))

    def greedy(self, params, obs_b) -> jax.Array:
        """The policy's mean action, tanh-squashed into the env's bounds [B, A] (`srljax-evaluate`)."""
        mean, _ = self.actor.apply(params["actor"], self._x(obs_b))
        return self.rescale(jnp.tanh(mean))

    def policy_params(self, state: SACState):
        """What distributed actors (or policy workers) receive: the actor's parameters and whether a
        gradient step has been taken (before the first, actions are uniform in the bounds)."""
        return {"actor": state.params["actor"], "trained": (state.updates > 0).astype(jnp.float32)}

    def actor_step(self, params, obs_b, key: jax.Array):
        """A distributed actor's policy call on `policy_params`: env actions [B, A] sampled from the
        squashed Gaussian (uniform in the bounds until the trainer's first gradient step), log pi(a)
        [B] of the squashed action, values 0 (the critics stay on the trainer)."""
        policy_key, random_key = jax.random.split(key)
        a, logp = self.policy(params["actor"], self._x(obs_b), policy_key)
        uniform = jax.random.uniform(random_key, a.shape, a.dtype, -1.0, 1.0)
        trained = params["trained"] > 0
        return self.rescale(jnp.where(trained, a, uniform)), jnp.where(trained, logp, 0.0), jnp.zeros_like(logp)

    custom_loss: Optional[Callable] = None
    """A user's critic loss `loss(learner, critic_params, state, batch, weight_n, key) -> (loss, (|td| [N],
    mean Q))` in place of `critic_loss` (`learner.critic_loss(...)` is SAC's own; `learner.policy`,
    `learner.critic.apply`, `soft_target` are the parts). The actor and temperature updates stay SAC's."""

    def critic_objective(self, critic_params, state: SACState, batch, weight_n, key):
        if self.custom_loss is not None:
            return self.custom_loss(self, critic_params, state, batch, weight_n, key)
        return self.critic_loss(critic_params, state, batch, weight_n, key)

    def critic_loss(self, critic_params, state: SACState, batch, weight_n, key):
        x_tm1, x_t = self._x(batch["obs"]), self._x(batch["next_obs"])
        a_tm1 = (batch["action"].astype(jnp.float32) - self.mid) / self.half
        a_t, logp_t = self.policy(state.params["actor"], x_t, key)
        q_t = self.critic.apply(state.target_critic, x_t, a_t)
        target_tm1 = jax.lax.stop_gradient(
            soft_target(q_t, logp_t, batch["reward"], batch["discount"], jnp.exp(state.log_alpha)))
        q_tm1 = self.critic.apply(critic_params, x_tm1, a_tm1)            # [K, N]
        td_tm1 = target_tm1[None] - q_tm1
        loss = jnp.mean(weight_n[None] * 0.5 * td_tm1 * td_tm1) * q_tm1.shape[0]
        return loss, (jnp.mean(jnp.abs(td_tm1), axis=0), jnp.mean(q_tm1))

    def actor_loss(self, actor_params, critic_params, alpha, x, weight_n, key):
        a, logp = self.policy(actor_params, x, key)
        q = jnp.min(self.critic.apply(critic_params, x, a), axis=0)
        return jnp.mean(weight_n * (alpha * logp - q)), logp

    def update(self, state: SACState, batch, weight_n):
        """One gradient step of critics, actor and temperature: (state, metrics, |td| [N])."""
        key, critic_key, actor_key = jax.random.split(state.key, 3)
        if self.axis_name is not None:       # the same key on every replica; noise of its own per device
            dev = jax.lax.axis_index(self.axis_name)
            critic_key, actor_key = jax.random.fold_in(critic_key, dev), jax.random.fold_in(actor_key, dev)
        (loss, (td_abs, q_mean)), grads = jax.value_and_grad(self.critic_objective, has_aux=True)(
            state.params["critic"], state, batch, weight_n, critic_key)
        grads = average(grads, self.axis_name, self.grad_reduce)
        step, critic_opt = self.optimizer.update(grads, state.opt_state["critic"], state.params["critic"])
        critic = optax.apply_updates(state.params["critic"], step)

        alpha = jnp.exp(state.log_alpha)
        x = self._x(batch["obs"])
        (actor_loss, logp), grads = jax.value_and_grad(self.actor_loss, has_aux=True)(
            state.params["actor"], critic, alpha, x, weight_n, actor_key)
        grads = average(grads, self.axis_name, self.grad_reduce)
        step, actor_opt = self.optimizer.update(grads, state.opt_state["actor"], state.params["actor"])
        actor = optax.apply_updates(state.params["actor"], step)

        entropy = average(-jnp.mean(jax.lax.stop_gradient(logp)), self.axis_name, self.grad_reduce)
        # d/d log_alpha of -log_alpha * (log pi + target): alpha falls while the entropy is above target.
        s = self.settings
        alpha_grad = jnp.where(s.learn_alpha, entropy - s.target_entropy, 0.0)
        step, alpha_opt = self.alpha_optimizer.update(alpha_grad, state.opt_state["alpha"], state.log_alpha)
        log_alpha = optax.apply_updates(state.log_alpha, step)

        new = SACState(params={"actor": actor, "critic": critic},
                       target_critic=polyak(critic, state.target_critic, s.tau), log_alpha=log_alpha,
                       opt_state={"actor": actor_opt, "critic": critic_opt, "alpha": alpha_opt},
                       key=key, updates=state.updates + 1)
        metrics = {"loss": loss, "actor_loss": actor_loss, "alpha": alpha, "entropy": entropy, "q_mean": q_mean,
                   "td_abs": jnp.mean(td_abs)}
        metrics = average(metrics, self.axis_name)
        return new, metrics, td_abs

    def host_metrics(self, env_steps: int) -> dict:
        return {}


def build(cfg, obs_space, action_space, *, axis_name: Optional[str] = None, grad_reduce=None, loss=None,
          num_updates: Optional[int] = None) -> SACLearner:
    """The registry's builder (the env's adapter has refused any action space but a one-axis Box and
    `registry.AlgorithmSpec.build` one without finite bounds, `envs.space_check`); `loss`: a critic loss
    (`SACLearner.custom_loss`)."""
    low, high = (np.broadcast_to(np.asarray(b, np.float32), action_space.shape) for b in
                 (action_space.low, action_space.high))
    s = cfg.sac
    A = int(action_space.shape[0])
    hidden, act = tuple(cfg.network.hidden), cfg.network.activation
    target_entropy = -float(A) if s.target_entropy is None else float(s.target_entropy)
    replay = ReplaySettings(buffer_size=s.buffer_size, batch_size=s.batch_size, learning_starts=s.learning_starts,
                            train_every=s.train_every, gradient_steps=s.gradient_steps, n_step=s.n_step,
                            gamma=s.gamma, prioritized=s.prioritized, alpha=s.alpha, beta=s.beta,
                            replay_ratio=s.replay_ratio)
    optimizers = (make_optimizer(s.lr, s.max_grad_norm, 1e-8, None), optax.adam(s.alpha_lr))
    settings = SACSettings(tau=s.tau, init_alpha=s.init_alpha, target_entropy=target_entropy,
                           learn_alpha=s.learn_alpha, obs_ndim=obs_rank(obs_space))
    init = cfg.network.init
    learner = SACLearner(Actor(A, hidden, act, init), twin(2, hidden, act, init), (low, high), optimizers, settings, replay,
                         axis_name=axis_name, grad_reduce=grad_reduce)
    learner.custom_loss = loss
    return learner
