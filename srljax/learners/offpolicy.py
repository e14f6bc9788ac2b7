"""What a replay algorithm tells the fused replay loop (`dataflow.fused_replay`), and the helpers
the algorithms share.

A replay algorithm is an object with

- `replay`: a `ReplaySettings` (buffer, batch, schedule, n-step, prioritized sampling);
- `metric_keys`: the names of the per-gradient-step metrics `update` returns (averaged per log row);
- `init(key, obs_b) -> state` (a flax dataclass with `params` and `updates`, gradient steps taken);
- `act(params, obs_b, key, env_steps) -> action_b`: the actions the env takes and the buffer stores;
- `update(state, batch, weight_n) -> (state, metrics, |td| [N])`: one gradient step on a sampled
  batch with importance weights (1 under uniform sampling); |td| becomes the new priorities. Built
  with `axis_name` (fused mode on several devices: each device's batch is its share of the global
  one) or `grad_reduce` (several trainer processes), gradients are averaged (`average`) before
  the optimiser step, so every replica takes the same step;
- `host_metrics(env_steps) -> dict`: figures known from the schedule alone (DQN's epsilon).

A transition is {"obs", "action", "reward" (the n-step return), "discount" (gamma^m, 0 after a
termination), "next_obs"}. The loop never names an algorithm.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class ReplaySettings:
    buffer_size: int
    batch_size: int
    learning_starts: int          # env steps (all envs) before the first gradient step
    train_every: int              # env-batch steps between rounds of gradient steps
    gradient_steps: int           # gradient steps per round
    n_step: int = 1
    gamma: float = 0.99
    prioritized: bool = False
    alpha: float = 0.6
    beta: float = 0.4

    def replay_ratio(self, num_envs: int) -> float:
        """Sampled transitions per env step."""
        return self.gradient_steps * self.batch_size / (self.train_every * num_envs)


def average(tree, axis_name=None, grad_reduce=None):
    """The mean of `tree` over the devices of `axis_name` (fused mode, inside `shard_map`) and over
    the trainer processes (`grad_reduce`, distributed mode); `tree` itself when neither is given."""
    if axis_name is not None:
        tree = jax.lax.pmean(tree, axis_name)
    if grad_reduce is not None:
        tree = grad_reduce(tree)
    return tree


def polyak(online, target, tau):
    """target <- tau * online + (1 - tau) * target, leaf by leaf."""
    return jax.tree.map(lambda o, t: tau * o + (1.0 - tau) * t, online, target)


def flatten_obs(obs, obs_ndim: int):
    """Observations [..., *obs_shape] -> float32 [..., prod(obs_shape)]."""
    lead = obs.shape[: obs.ndim - obs_ndim]
    return obs.reshape(lead + (-1,)).astype(jnp.float32)
