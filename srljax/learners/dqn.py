"""DQN: a Q-network learned from replay with (double) DQN targets; `build` is its registry entry.

The parts are pure functions, time-indexed as in rlax (`_tm1`: the transition's first step,
`_t`: the step it bootstraps from):

- `double_q_target`: r + discount * Q_target(s', argmax_a Q_online(s', a)) (or max_a Q_target);
- `huber`, `epsilon_greedy`, `linear_epsilon`;
- `DQNLearner`: init, act and one gradient step (Huber or squared TD loss, `dqn.loss`; importance weights, Adam with
  global-norm clipping, target network updated every `target_update_every` steps with weight `tau`).

A replay transition is {"obs", "action", "reward" (the n-step return), "discount" (gamma^m, or 0
after a termination), "next_obs" (the observation the return bootstraps from)}: see
`replay.n_step_window`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from srljax.learners.learner import make_optimizer
from srljax.learners.networks import MLP, Rank, flatten_obs, obs_rank
from srljax.learners.offpolicy import ReplaySettings, average


class QNetwork(nn.Module):
    """An MLP over the flattened observation with one output per action; dueling: V + A - mean(A)."""

    num_actions: int
    obs_ndim: Rank
    hidden: Sequence[int] = (64, 64)
    activation: str = "relu"
    dueling: bool = False
    init_scheme: str = "orthogonal"     # the torso's (`network.init`)

    @nn.compact
    def __call__(self, obs):
        x = flatten_obs(obs, self.obs_ndim)
        h = MLP(self.hidden, self.activation, self.init_scheme, name="torso")(x)
        if not self.dueling:
            return nn.Dense(self.num_actions, name="q")(h)
        value = nn.Dense(1, name="value")(h)
        adv = nn.Dense(self.num_actions, name="advantage")(h)
        return value + adv - jnp.mean(adv, axis=-1, keepdims=True)


@struct.dataclass
class DQNState:
    params: Any
    target_params: Any
    opt_state: Any
    updates: jax.Array          # gradient steps taken


@dataclasses.dataclass(frozen=True)
class DQNSettings:
    double: bool = True
    tau: float = 1.0
    target_update_every: int = 1
    huber_delta: Optional[float] = 1.0     # None: the squared loss td^2 / 2


def linear_epsilon(start: float, end: float, decay_steps: int):
    """epsilon(env_steps): linear from `start` to `end` over `decay_steps`, then `end`."""
    def epsilon(env_steps):
        frac = jnp.clip(jnp.asarray(env_steps, jnp.float32) / max(decay_steps, 1), 0.0, 1.0)
        return start + frac * (end - start)
    return epsilon


def epsilon_greedy(key: jax.Array, q_b: jax.Array, epsilon) -> jax.Array:
    """argmax_a q, or with probability epsilon a uniformly random action; q [B, A] -> [B] int32."""
    explore_key, action_key = jax.random.split(key)
    B, A = q_b.shape
    random_b = jax.random.randint(action_key, (B,), 0, A)
    explore_b = jax.random.uniform(explore_key, (B,)) < epsilon
    return jnp.where(explore_b, random_b, jnp.argmax(q_b, axis=-1)).astype(jnp.int32)


def double_q_target(q_t_online, q_t_target, r_tm1, discount_tm1, double: bool = True):
    """r + discount * Q_target(s_t, a*), a* = argmax of the online (double) or target Q; q [N, A]."""
    chex.assert_equal_shape([q_t_online, q_t_target])
    chex.assert_equal_shape([r_tm1, discount_tm1])
    a_star = jnp.argmax(q_t_online if double else q_t_target, axis=-1)
    q_star = jnp.take_along_axis(q_t_target, a_star[:, None], axis=-1)[:, 0]
    return r_tm1 + discount_tm1 * q_star


def huber(x, delta: Optional[float] = 1.0):
    """Huber loss of `x` with threshold `delta`; `delta=None`: x^2 / 2 (no clip of the gradient)."""
    if delta is None:
        return 0.5 * x * x
    abs_x = jnp.abs(x)
    quad = jnp.minimum(abs_x, delta)
    return 0.5 * quad * quad + delta * (abs_x - quad)


class DQNLearner:
    """init/act/update for a Q-network; pure and jittable (a replay algorithm of `learners.offpolicy`).
    With `axis_name` / `grad_reduce`, gradients (and the reported metrics) are averaged over devices /
    trainer processes before the optimiser step."""

    metric_keys = ("loss", "q_mean", "td_abs", "grad_norm")

    def __init__(self, network: QNetwork, optimizer: optax.GradientTransformation, settings: DQNSettings,
                 epsilon: Callable, replay: ReplaySettings, axis_name: Optional[str] = None,
                 grad_reduce: Optional[Callable] = None):
        self.network = network
        self.axis_name, self.grad_reduce = axis_name, grad_reduce
        self.optimizer = optimizer
        self.settings = settings
        self.epsilon = epsilon          # env steps -> exploration rate
        self.replay = replay

    def host_metrics(self, env_steps: int) -> dict:
        return {"epsilon": float(self.epsilon(env_steps))}

    def init(self, key: jax.Array, example_obs) -> DQNState:
        params = self.network.init(key, example_obs)
        return DQNState(params=params, target_params=params, opt_state=self.optimizer.init(params),
                        updates=jnp.zeros((), jnp.int32))

    def q(self, params, obs):
        return self.network.apply(params, obs)

    def act(self, params, obs_b, key: jax.Array, env_steps) -> jax.Array:
        """Epsilon-greedy actions [B], epsilon from the schedule at `env_steps`."""
        return epsilon_greedy(key, self.q(params, obs_b), self.epsilon(env_steps))

    def greedy(self, params, obs_b) -> jax.Array:
        """argmax_a Q(s, a) [B] int32, no exploration (`srljax-evaluate`)."""
        return jnp.argmax(self.q(params, obs_b), axis=-1).astype(jnp.int32)

    @staticmethod
    def policy_params(state: DQNState):
        """What actors act with: the online Q-network's parameters."""
        return state.params

    def actor_step(self, params, obs_b, key: jax.Array):
        """A distributed actor's policy call: greedy actions [B] (each actor adds its own epsilon,
        Ape-X's schedule), log-probabilities 0, values max_a Q."""
        q_b = self.q(params, obs_b)
        zeros = jnp.zeros(q_b.shape[:1], jnp.float32)
        return jnp.argmax(q_b, axis=-1).astype(jnp.int32), zeros, jnp.max(q_b, axis=-1)

    custom_loss: Optional[Callable] = None
    """A user's `loss(learner, params, target_params, batch, weight_n) -> (loss, (td [N], q(s, a) [N]))`
    in place of `loss` (`learner.q(params, obs)` gives Q-values)."""

    def objective(self, params, target_params, batch, weight_n):
        if self.custom_loss is not None:
            return self.custom_loss(self, params, target_params, batch, weight_n)
        return self.loss(params, target_params, batch, weight_n)

    def loss(self, params, target_params, batch, weight_n):
        """Importance-weighted Huber (or squared) loss of the TD errors: (loss, (td [N], q(s, a) [N]))."""
        N = batch["reward"].shape[0]
        both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), batch["obs"], batch["next_obs"])
        q_both = self.q(params, both)
        q_tm1, q_t_online = q_both[:N], jax.lax.stop_gradient(q_both[N:])
        q_t_target = self.q(target_params, batch["next_obs"])
        target_tm1 = jax.lax.stop_gradient(
            double_q_target(q_t_online, q_t_target, batch["reward"], batch["discount"], self.settings.double))
        qa_tm1 = jnp.take_along_axis(q_tm1, batch["action"][:, None].astype(jnp.int32), axis=-1)[:, 0]
        td_tm1 = target_tm1 - qa_tm1
        chex.assert_shape([td_tm1, weight_n], (N,))
        return jnp.mean(weight_n * huber(td_tm1, self.settings.huber_delta)), (td_tm1, qa_tm1)

    def update(self, state: DQNState, batch, weight_n):
        """One gradient step: (state, metrics, |TD error| [N] for new priorities)."""
        (loss, (td, qa)), grads = jax.value_and_grad(self.objective, has_aux=True)(
            state.params, state.target_params, batch, weight_n)
        grads = average(grads, self.axis_name, self.grad_reduce)
        updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        n = state.updates + 1
        s = self.settings
        refresh = (n % s.target_update_every) == 0
        target = jax.tree.map(lambda o, t: jnp.where(refresh, s.tau * o + (1.0 - s.tau) * t, t),
                              params, state.target_params)
        metrics = {"loss": loss, "q_mean": jnp.mean(qa), "td_abs": jnp.mean(jnp.abs(td)),
                   "grad_norm": optax.tree.norm(grads)}
        metrics = average(metrics, self.axis_name)
        return DQNState(params=params, target_params=target, opt_state=opt_state, updates=n), metrics, jnp.abs(td)


def build(cfg, obs_space, action_space, *, axis_name: Optional[str] = None, grad_reduce=None, loss=None,
          num_updates: Optional[int] = None) -> DQNLearner:
    """The registry's builder (`registry.AlgorithmSpec.build` has refused any action space but Discrete
    already, `envs.space_check.check_algorithm`); `loss`: see `DQNLearner.custom_loss`."""
    d = cfg.dqn
    network = QNetwork(num_actions=action_space.n, obs_ndim=obs_rank(obs_space), hidden=tuple(cfg.network.hidden),
                       activation=cfg.network.activation, dueling=d.dueling, init_scheme=cfg.network.init)
    settings = DQNSettings(double=d.double, tau=d.tau, target_update_every=d.target_update_every,
                           huber_delta=1.0 if d.loss == "huber" else None)
    epsilon = linear_epsilon(d.epsilon_start, d.epsilon_end, d.epsilon_decay_steps)
    replay = ReplaySettings(buffer_size=d.buffer_size, batch_size=d.batch_size, learning_starts=d.learning_starts,
                            train_every=d.train_every, gradient_steps=d.gradient_steps, n_step=d.n_step,
                            gamma=d.gamma, prioritized=d.prioritized, alpha=d.alpha, beta=d.beta,
                            replay_ratio=d.replay_ratio, apex_epsilon=d.apex_epsilon, apex_alpha=d.apex_alpha)
    learner = DQNLearner(network, make_optimizer(d.lr, d.max_grad_norm, 1e-8, None), settings, epsilon, replay,
                         axis_name=axis_name, grad_reduce=grad_reduce)
    learner.custom_loss = loss
    return learner
