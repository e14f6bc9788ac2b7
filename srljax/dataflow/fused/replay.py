"""Fused mode for algorithms that learn from replay (`learns_from="replay"`: DQN, SAC).

Env stepping, acting, the replay buffer and learning are one jitted program per device, run under
`jax.shard_map` over a one-axis `Mesh` of the local devices (as `dataflow.fused.rollout`): each device
steps `num_envs / D` envs, keeps its own shard of the buffer (`buffer_size / D` transitions: what
its envs sent) and samples `batch_size / D` of each global batch from it; gradients are averaged
over the devices (`pmean`) before every optimiser step, so the replicas stay identical and a step
is the step one device would take on the whole batch. Prioritized sampling is stratified by
shard: each device draws its share in proportion to priority within its shard, with importance
weights for that distribution, normalised by the largest weight of the global batch.

The algorithm object (`learners.protocols.ReplayAlgorithm`) says how it acts, how it learns from a
sampled batch, its metrics and its `ReplaySettings`; this loop names none. Per env-batch step
(`num_envs` env steps):

1. act (`algo.act`: DQN epsilon-greedy, SAC a squashed Gaussian), step the env batch;
2. slide the step into a window of the last `n_step` steps per env and add the window's
   oldest step to the buffer as an n-step transition (cut short at an episode end);
3. once `learning_starts` env steps are collected, every `train_every` env-batch steps, take
   `gradient_steps` gradient steps (`algo.update`) on batches of `batch_size` (uniform or
   prioritized sampling; priorities from the new |TD errors| only when prioritized).

The schedule is static, so the jitted program has no `lax.cond` around the buffer or the learning
step: `chunk` splits its steps into those before `learning_starts` (a program that only collects)
and those after (a program that learns every step, or every `train_every`-th step by a cond on
the step count alone); new transitions are dropped, not branched around, until the window holds
`n_step` steps. A run is a sequence of `chunk(n)` calls, each `n` env-batch steps inside
`lax.while_loop`s (one log interval); `fused.loop.train` is the host loop of both fused trainers.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from srljax import envs
from srljax.dataflow.fused.loop import AXIS, RING, device_index, record_episodes, ring_mean
from srljax.dataflow.fused.population import (MemberAlgorithm, member_rows, members_of, population_size, programs,
                                              seeds_for)
from srljax.envs.core import State
from srljax.errors import UserError
from srljax.learners import registry, replay


@struct.dataclass
class ReplayState:
    """Per device (every leaf has a leading device axis on the host)."""
    learner: Any              # identical on every device
    buffer: replay.Replay     # this device's shard
    env: State
    window: Any               # the last n steps of this device's envs: leaves [n, B / D, ...]
    filled: jax.Array         # steps in the window (up to n): transitions are stored once it is full
    key: jax.Array            # this device's: acting and sampling
    ring: jax.Array           # [RING / D] returns of the latest completed episodes
    ring_ptr: jax.Array
    ring_count: jax.Array
    steps: jax.Array          # env-batch steps taken (global, identical on every device)


class FusedReplayTrainer(MemberAlgorithm):
    """Builds the env, the learner and the chunk function, sharded over the local devices, for one config."""

    def __init__(self, cfg, loss: Optional[Callable] = None, env=None, devices=None, algo=None):
        """`env`: a user's JAX env object in place of `cfg.env.id` (`srljax.envs.custom`); `algo`: a
        replay algorithm object (`learners.protocols.ReplayAlgorithm`) in place of the registry's for
        `cfg` (built with `axis_name=fused.AXIS` for several devices)."""
        self.cfg = cfg
        self.B = cfg.env.num_envs
        self.devices = list(devices or jax.local_devices())
        D = len(self.devices)
        spec = registry.for_config(cfg)
        _check_split("env.num_envs", self.B, D)
        self.local_envs = self.B // D
        self.axis = AXIS if D > 1 else None       # one device: no collectives at all
        if env is None:
            self.env = envs.make(cfg.env.id, num_envs=self.local_envs, **cfg.env.kwargs)
        else:
            from srljax.envs.custom import jax_env
            self.env = jax_env(env, self.local_envs)
        self._loss = loss
        if algo is not None and cfg.sweep:
            raise UserError("sweep: a replay algorithm object given in place of the registry's cannot be rebuilt "
                            "with each member's settings; sweep with a registered algorithm")
        self.algo = algo if algo is not None else self._make_algo(cfg)
        _check_split(f"{spec.name}.buffer_size", self.rs.buffer_size, D)
        _check_split(f"{spec.name}.batch_size", self.rs.batch_size, D)
        self.local_capacity = self.rs.buffer_size // D
        self.local_batch = self.rs.batch_size // D
        self.ring_size = max(1, -(-RING // D))
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        self.members = population_size(cfg)          # a population (`seeds`, `sweep`): `fused.population`
        self.labels = members_of(cfg)
        self._init, self._chunks = programs(
            self, self._init_fn, {learn: functools.partial(self._chunk_fn, learn=learn) for learn in (False, True)},
            (P(AXIS), P()))
        self._warm = set()

    @property
    def rs(self):
        """The replay settings of the algorithm (a member's, while its swept program is traced)."""
        return self.algo.replay

    # -- per device ----------------------------------------------------------------------------
    def _init_fn(self, seed):
        learner_key, env_key, key = jax.random.split(jax.random.PRNGKey(seed), 3)
        dev = device_index(self.axis)
        if self.axis is not None:               # one device keeps the keys it always had
            env_key, key = jax.random.fold_in(env_key, dev), jax.random.fold_in(key, dev)
        env_state = self.env.reset(env_key)
        obs = env_state.obs
        learner = self.algo.init(learner_key, obs)
        action = jax.eval_shape(self.algo.act, learner.params, obs, key, 0)
        one = jax.tree.map(lambda x: x[0], obs)          # observations may be pytrees (dict spaces)
        example = {"obs": one, "action": jnp.zeros(action.shape[1:], action.dtype), "reward": jnp.zeros(()),
                   "discount": jnp.zeros(()), "next_obs": one}
        n = self.rs.n_step
        zeros_b = jnp.zeros((n, self.local_envs), jnp.float32)
        stack = lambda tree: jax.tree.map(lambda x: jnp.zeros((n,) + x.shape, x.dtype), tree)   # noqa: E731
        window = {"obs": stack(obs), "action": jnp.zeros((n,) + action.shape, action.dtype), "reward": zeros_b,
                  "terminated": zeros_b, "truncated": zeros_b, "final_obs": stack(obs)}
        zero = jnp.zeros((), jnp.int32)
        # strong dtypes throughout (an env's state may start weakly typed, e.g. a Python 0.0, and turn
        # strong after its first step, which would compile the chunk again)
        env_state = jax.tree.map(lambda x: jnp.asarray(x, x.dtype), env_state)
        return ReplayState(learner=learner, buffer=replay.init(example, self.local_capacity), env=env_state,
                           window=window, filled=zero, key=key, ring=jnp.zeros((self.ring_size,), jnp.float32),
                           ring_ptr=zero, ring_count=zero, steps=zero)

    def _transition(self, window):
        """The n-step transition of the window's oldest step, one per env (leaves [B / D, ...])."""
        ret, discount, last = replay.n_step_window(window["reward"], window["terminated"], window["truncated"],
                                                   self.rs.gamma)
        pick = lambda fo: jnp.take_along_axis(fo, last.reshape((1, self.local_envs) + (1,) * (fo.ndim - 2)),  # noqa: E731
                                              axis=0)[0]
        next_obs = jax.tree.map(pick, window["final_obs"])
        return {"obs": jax.tree.map(lambda x: x[0], window["obs"]), "action": window["action"][0], "reward": ret,
                "discount": discount, "next_obs": next_obs}

    def _train_round(self, learner, buf, key):
        """`gradient_steps` gradient steps, each on this device's share of the global batch;
        returns summed metrics."""
        d, n = self.rs, self.local_batch

        def step(carry, k):
            learner, buf = carry
            if d.prioritized:
                idx, batch, weight = replay.sample_prioritized(buf, k, n, d.alpha, d.beta, axis_name=self.axis)
            else:
                idx, batch = replay.sample_uniform(buf, k, n)
                weight = jnp.ones((n,), jnp.float32)
            learner, metrics, td_abs = self.algo.update(learner, batch, weight)
            if d.prioritized:
                buf = replay.update_priorities(buf, idx, td_abs + replay.PRIORITY_EPS)
            return (learner, buf), metrics

        keys = jax.random.split(key, d.gradient_steps)
        if d.prioritized:
            (learner, buf), metrics = jax.lax.scan(step, (learner, buf), keys)
            return learner, buf, {k: jnp.sum(v) for k, v in metrics.items()}

        def read_only(learner, k):       # uniform sampling only reads the buffer: the loop carries the learner
            (learner, _), metrics = step((learner, buf), k)
            return learner, metrics

        if d.gradient_steps == 1:
            learner, metrics = read_only(learner, keys[0])
            return learner, buf, metrics
        learner, metrics = jax.lax.scan(read_only, learner, keys)
        return learner, buf, {k: jnp.sum(v) for k, v in metrics.items()}

    def _env_batch_step(self, fs: ReplayState, learn: bool):
        d = self.rs
        key, act_key, learn_key = jax.random.split(fs.key, 3)
        action = self.algo.act(fs.learner.params, fs.env.obs, act_key, fs.steps * self.B)
        nxt = self.env.step(fs.env, action)
        new = {"obs": fs.env.obs, "action": action, "reward": nxt.reward.astype(jnp.float32),
               "terminated": nxt.done.astype(jnp.float32), "truncated": nxt.truncated.astype(jnp.float32),
               "final_obs": nxt.final_obs}
        window = jax.tree.map(lambda w, x: jnp.concatenate([w[1:], x[None].astype(w.dtype)]), fs.window, new)
        filled = jnp.minimum(fs.filled + 1, d.n_step)
        full = jax.tree.map(lambda x: x[None], self._transition(window))
        buf = replay.add(fs.buffer, full, valid=(filled >= d.n_step) if d.n_step > 1 else None)
        zeros = {k: jnp.zeros((), jnp.float32) for k in self.algo.metric_keys}
        steps = fs.steps + 1
        if not learn:
            learner, sums, learn = fs.learner, zeros, jnp.zeros((), bool)
        elif d.train_every == 1:
            (learner, buf, sums), learn = self._train_round(fs.learner, buf, learn_key), jnp.ones((), bool)
        else:
            learn = steps % d.train_every == 0
            learner, buf, sums = jax.lax.cond(learn, self._train_round, lambda lr, b, k: (lr, b, zeros),
                                              fs.learner, buf, learn_key)
        fs = fs.replace(learner=learner, buffer=buf, env=nxt, window=window, filled=filled, key=key, steps=steps)
        ended = nxt.metrics["episode_ended"].astype(jnp.float32)
        fs, ret_sum, count = record_episodes(fs, nxt.metrics["episode_return"], ended, self.ring_size, self.axis)
        out = {**sums, "gradient_steps": jnp.where(learn, d.gradient_steps, 0).astype(jnp.int32),
               "episode_return_sum": ret_sum, "episodes": count}
        return fs, out

    def _chunk_fn(self, fs: ReplayState, n_steps, learn: bool):
        shapes = jax.eval_shape(functools.partial(self._env_batch_step, learn=learn), fs)[1]
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def body(carry):
            i, fs, acc = carry
            fs, m = self._env_batch_step(fs, learn)
            return i + 1, fs, jax.tree.map(jnp.add, acc, m)

        _, fs, acc = jax.lax.while_loop(lambda c: c[0] < n_steps, body, (jnp.zeros((), jnp.int32), fs, zeros))
        return fs, acc

    # -- host ----------------------------------------------------------------------------------
    def init(self, seed: int) -> ReplayState:
        self.labels = members_of(self.cfg, seed)     # a population's member m: seed + m % seeds
        return self._init(seeds_for(seed, len(self.devices), self.members, self.cfg.seeds), *self.sweep_args)

    def first_learning_step(self) -> int:
        """The first env-batch step (1-based) from which the schedule learns: `learning_starts` env
        steps taken and `batch_size` transitions in the buffer (`train_every` aside)."""
        d = self.rs
        return max(1, -(-d.learning_starts // self.B), -(-d.batch_size // self.B) + d.n_step - 1)

    def compile(self, fs: ReplayState) -> None:
        """Compile the programs the rest of the run from `fs` needs (a 0-step call each)."""
        needed = {False, True} if self.progress(fs) + 1 < self.first_learning_step() else {True}
        for learn in sorted(needed - self._warm):
            jax.block_until_ready(self._chunks[learn](fs, jnp.asarray(0, jnp.int32), *self.sweep_args))
            self._warm.add(learn)

    def chunk(self, fs: ReplayState, n_steps: int):
        """Run `n_steps` env-batch steps; returns (state, the interval's metrics as host numbers).
        The first call compiles what the run needs (`compile`)."""
        self.compile(fs)
        s0, first = self.progress(fs), self.first_learning_step()
        collect = min(n_steps, max(0, first - 1 - s0))
        acc = None
        for learn, k in ((False, collect), (True, n_steps - collect)):
            if k:
                fs, a = self._chunks[learn](fs, jnp.asarray(k, jnp.int32), *self.sweep_args)
                acc = a if acc is None else jax.tree.map(jnp.add, acc, a)
        acc = jax.tree.map(lambda x: np.asarray(x)[0], acc)        # the same on every device
        size = np.asarray(fs.buffer.size)                          # [devices] or [devices, members]
        size = size.sum(axis=0) if self.members else np.sum(size)

        def interval(acc, buffer_size):
            grad_steps, episodes = int(acc["gradient_steps"]), int(acc["episodes"])
            out = {k: (float(acc[k]) / grad_steps if grad_steps else None) for k in self.algo.metric_keys}
            out["episodes"] = episodes
            out["episode_return"] = float(acc["episode_return_sum"]) / episodes if episodes else None
            out["gradient_steps"] = grad_steps
            out["replay_ratio"] = grad_steps * self.rs.batch_size / (n_steps * self.B)
            out.update(self.algo.host_metrics(self.progress(fs) * self.B))
            out["buffer_size"] = int(buffer_size)
            return out

        return fs, member_rows(acc, self.labels, interval, per_member=size)   # each member's buffer size

    # the host loop's view (`fused.loop.train`): progress in env-batch steps of `num_envs` env steps
    unit_name = "env-batch step"

    @property
    def unit_env_steps(self) -> int:
        return self.B

    @property
    def total_units(self) -> int:
        return -(-self.cfg.total_env_steps // self.B)

    def progress(self, fs: ReplayState) -> int:
        """Env-batch steps taken (waits for `fs`; the same for every member of a population)."""
        return int(np.min(np.asarray(fs.steps)[0]))

    def policy_version(self, fs: ReplayState) -> int:
        return int(np.min(np.asarray(fs.learner.updates)[0]))

    def check(self, fs: ReplayState, done: int) -> None:
        pass

    def summary_counts(self, fs: ReplayState) -> dict:
        return {"updates": self.policy_version(fs), "devices": len(self.devices), "skipped_steps": 0}

    def last_returns(self, fs: ReplayState) -> Optional[float]:
        return ring_mean(fs)

    def restore(self, state: dict, seed: int) -> ReplayState:
        """A ReplayState from a checkpoint's state dict: all of it (buffer, env states and keys
        included) when the device count and the env states' layout are unchanged; else the learner, the
        step count and the buffer's transitions (dealt out over the new shards, the newest kept
        when they do not fit), with fresh env states, windows, keys and episode rings."""
        from srljax.checkpoint import CheckpointError, into
        fresh = jax.tree.map(np.asarray, self.init(seed))
        if np.ndim(state["steps"]) == 0:          # written before fused replay was sharded: one device
            state = jax.tree.map(lambda x: np.asarray(x)[None], state)
            state.setdefault("filled", np.full((1,), self.rs.n_step, np.int32))
        D = len(self.devices)
        if np.shape(state["steps"])[0] == D:
            try:
                return jax.tree.map(jnp.asarray, into(fresh, state, "checkpointed run state"))
            except CheckpointError:
                if self.members:
                    raise
                pass            # env states of another layout (an older adapter's): start afresh
        if self.members:
            raise CheckpointError(f"a population's replay checkpoint of {np.shape(state['steps'])[0]} devices "
                                  f"resumes on that many devices, not {D}")
        learner = into(jax.tree.map(lambda x: x[0], fresh.learner),
                       jax.tree.map(lambda x: np.asarray(x)[0], state["learner"]), "checkpointed learner")
        fs = fresh.replace(learner=jax.tree.map(lambda x: np.stack([x] * D), learner),
                           buffer=reshard(fresh.buffer, state["buffer"]),
                           steps=np.full((D,), np.asarray(state["steps"])[0], np.int32))
        return jax.tree.map(jnp.asarray, fs)

    def host_learner(self, fs: ReplayState):
        """The learner state of device 0 as host numpy (replicas are identical)."""
        return jax.tree.map(lambda x: np.asarray(x[0]), fs.learner)


def _check_split(what: str, n: int, devices: int) -> None:
    if n % devices:
        raise UserError(f"{what}={n} does not split evenly over {devices} devices; use a multiple of {devices}")


def reshard(fresh: replay.Replay, stored: dict) -> replay.Replay:
    """The transitions of a checkpointed buffer of D' shards dealt out over `fresh`'s D shards
    (host numpy, leading device axis): oldest first, shard by shard in turn, the oldest dropped
    when they do not all fit; priorities travel with their transitions."""
    from flax import serialization
    priority = np.asarray(stored["priority"])
    old_d, old_cap = priority.shape
    size, index = int(np.asarray(stored["size"])[0]), int(np.asarray(stored["index"])[0])
    order = (np.arange(size) + (index if size == old_cap else 0)) % old_cap       # oldest first
    new_d, new_cap = fresh.priority.shape
    per = min(size * old_d // new_d, new_cap)

    def deal(x, empty):
        x = np.asarray(x)[:, order]                                   # [D', size, ...]
        seq = np.swapaxes(x, 0, 1).reshape((size * old_d,) + x.shape[2:])[size * old_d - per * new_d:]
        out = np.array(empty)
        out[:, :per] = np.swapaxes(seq.reshape((per, new_d) + x.shape[2:]), 0, 1)
        return out

    data = jax.tree.map(deal, serialization.from_state_dict(fresh.data, stored["data"]), fresh.data)
    return fresh.replace(data=data, priority=deal(priority, fresh.priority),
                         index=np.full((new_d,), per % new_cap, np.int32), size=np.full((new_d,), per, np.int32),
                         max_priority=np.full((new_d,), np.max(np.asarray(stored["max_priority"])), np.float32))
