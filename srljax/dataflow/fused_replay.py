"""Fused mode for algorithms that learn from replay (`learns_from="replay"`: DQN, SAC).

Env stepping, acting, the replay buffer and learning are one jitted program on ONE device (the
default device; no sharding or pmap yet). The algorithm object says how it acts, how it learns
from a sampled batch, its metrics and its `ReplaySettings` (`learners.offpolicy`); this loop
names none. Per env-batch step (env.num_envs env steps):

1. act (`algo.act`: DQN epsilon-greedy, SAC a squashed Gaussian), step the env batch;
2. slide the step into a window of the last `n_step` steps per env and add the window's
   oldest step to the buffer as an n-step transition (cut short at an episode end);
3. once `learning_starts` env steps are collected, every `train_every` env-batch steps, take
   `gradient_steps` gradient steps (`algo.update`) on batches of `batch_size` (uniform or
   prioritized sampling; priorities from the new |TD errors| only when prioritized).

The schedule is static, so the jitted program has no `lax.cond` around the buffer or the learning
step: `chunk` splits its steps into those before `learning_starts` (a program that only collects)
and those after (a program that learns every step, or every `train_every`-th step by a cond on
the step count alone); new transitions are dropped, not branched around, in the first n-1 steps.
A run is a sequence of `chunk(n)` calls, each `n` env-batch steps inside `lax.while_loop`s
(one log interval); the host logs and checkpoints between chunks, with the rows and checkpoints
of `dataflow.fused`. `ReplayTrainer` and `train` have the shape of `FusedTrainer` and
`fused.train`, so `srljax.run` picks one module or the other by what the algorithm learns from.
"""
from __future__ import annotations

import functools
import math
import sys
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from srljax import envs
from srljax.dataflow import supervisor
from srljax.envs.core import State
from srljax.learners import registry, replay

RING = 100  # completed-episode returns kept for the summary (last 100 episodes)


@struct.dataclass
class ReplayState:
    learner: Any
    buffer: replay.Replay
    env: State
    window: Any               # the last n steps of every env: leaves [n, B, ...]
    key: jax.Array
    ring: jax.Array           # [RING] returns of the latest completed episodes
    ring_ptr: jax.Array
    ring_count: jax.Array
    steps: jax.Array          # env-batch steps taken


class ReplayTrainer:
    """Builds the env, the learner and the chunk function for one config (single device)."""

    def __init__(self, cfg, loss: Optional[Callable] = None, env=None):
        """`env`: a user's JAX env object in place of `cfg.env.id` (`srljax.envs.custom`)."""
        self.cfg = cfg
        self.B = cfg.env.num_envs
        if env is None:
            self.env = envs.make(cfg.env.id, num_envs=self.B, **cfg.env.kwargs)
        else:
            from srljax.envs.custom import jax_env
            self.env = jax_env(env, self.B)
        self.algo = registry.for_config(cfg).build(cfg, self.env.observation_space, self.env.action_space, loss=loss)
        self.rs = self.algo.replay
        self.devices = jax.local_devices()[:1]
        self._init = jax.jit(self._init_fn)
        self._chunks = {learn: jax.jit(functools.partial(self._chunk_fn, learn=learn)) for learn in (False, True)}
        self._warm = set()

    # -- on device -----------------------------------------------------------------------------
    def _init_fn(self, seed):
        learner_key, env_key, key = jax.random.split(jax.random.PRNGKey(seed), 3)
        env_state = self.env.reset(env_key)
        obs = env_state.obs
        learner = self.algo.init(learner_key, obs)
        action = jax.eval_shape(self.algo.act, learner.params, obs, key, 0)
        example = {"obs": obs[0], "action": jnp.zeros(action.shape[1:], action.dtype), "reward": jnp.zeros(()),
                   "discount": jnp.zeros(()), "next_obs": obs[0]}
        n = self.rs.n_step
        zeros_b = jnp.zeros((n, self.B), jnp.float32)
        stack = lambda x: jnp.zeros((n,) + x.shape, x.dtype)   # noqa: E731
        window = {"obs": stack(obs), "action": jnp.zeros((n,) + action.shape, action.dtype), "reward": zeros_b,
                  "terminated": zeros_b, "truncated": zeros_b, "final_obs": stack(obs)}
        zero = jnp.zeros((), jnp.int32)
        # strong dtypes throughout (an env's state may start weakly typed, e.g. a Python 0.0, and turn
        # strong after its first step, which would compile the chunk again)
        env_state = jax.tree.map(lambda x: jnp.asarray(x, x.dtype), env_state)
        return ReplayState(learner=learner, buffer=replay.init(example, self.rs.buffer_size), env=env_state,
                           window=window, key=key, ring=jnp.zeros((RING,), jnp.float32), ring_ptr=zero,
                           ring_count=zero, steps=zero)

    def _transition(self, window):
        """The n-step transition of the window's oldest step, one per env (leaves [B, ...])."""
        ret, discount, last = replay.n_step_window(window["reward"], window["terminated"], window["truncated"],
                                                   self.rs.gamma)
        fo = window["final_obs"]
        next_obs = jnp.take_along_axis(fo, last.reshape((1, self.B) + (1,) * (fo.ndim - 2)), axis=0)[0]
        return {"obs": window["obs"][0], "action": window["action"][0], "reward": ret, "discount": discount,
                "next_obs": next_obs}

    def _record_episodes(self, fs: ReplayState, returns, ended):
        rank = jnp.cumsum(ended.astype(jnp.int32))        # 1-based order of each completed episode
        total = rank[-1]
        keep = (ended > 0) & (rank > total - RING)
        idx = jnp.where(keep, (fs.ring_ptr + rank - 1) % RING, RING)
        return fs.replace(ring=fs.ring.at[idx].set(returns, mode="drop"), ring_ptr=(fs.ring_ptr + total) % RING,
                          ring_count=jnp.minimum(fs.ring_count + total, RING))

    def _train_round(self, learner, buf, key):
        """`gradient_steps` gradient steps; returns summed metrics."""
        d = self.rs

        def step(carry, k):
            learner, buf = carry
            if d.prioritized:
                idx, batch, weight = replay.sample_prioritized(buf, k, d.batch_size, d.alpha, d.beta)
            else:
                idx, batch = replay.sample_uniform(buf, k, d.batch_size)
                weight = jnp.ones((d.batch_size,), jnp.float32)
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
        steps = fs.steps + 1
        full = jax.tree.map(lambda x: x[None], self._transition(window))
        buf = replay.add(fs.buffer, full, valid=(steps >= d.n_step) if d.n_step > 1 else None)
        zeros = {k: jnp.zeros((), jnp.float32) for k in self.algo.metric_keys}
        if not learn:
            learner, sums, learn = fs.learner, zeros, jnp.zeros((), bool)
        elif d.train_every == 1:
            (learner, buf, sums), learn = self._train_round(fs.learner, buf, learn_key), jnp.ones((), bool)
        else:
            learn = steps % d.train_every == 0
            learner, buf, sums = jax.lax.cond(learn, self._train_round, lambda lr, b, k: (lr, b, zeros),
                                              fs.learner, buf, learn_key)
        fs = fs.replace(learner=learner, buffer=buf, env=nxt, window=window, key=key, steps=steps)
        ended = nxt.metrics["episode_ended"].astype(jnp.float32)
        fs = self._record_episodes(fs, nxt.metrics["episode_return"], ended)
        out = {**sums, "gradient_steps": jnp.where(learn, d.gradient_steps, 0).astype(jnp.int32),
               "episode_return_sum": jnp.sum(nxt.metrics["episode_return"] * ended), "episodes": jnp.sum(ended)}
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
        return self._init(np.uint32(seed))

    def first_learning_step(self) -> int:
        """The first env-batch step (1-based) from which the schedule learns: `learning_starts` env
        steps taken and `batch_size` transitions in the buffer (`train_every` aside)."""
        d = self.rs
        return max(1, -(-d.learning_starts // self.B), -(-d.batch_size // self.B) + d.n_step - 1)

    def compile(self, fs: ReplayState) -> None:
        """Compile the programs the rest of the run from `fs` needs (a 0-step call each)."""
        needed = {False, True} if int(np.asarray(fs.steps)) + 1 < self.first_learning_step() else {True}
        for learn in sorted(needed - self._warm):
            jax.block_until_ready(self._chunks[learn](fs, jnp.asarray(0, jnp.int32)))
            self._warm.add(learn)

    def chunk(self, fs: ReplayState, n_steps: int):
        """Run `n_steps` env-batch steps; returns (state, the interval's metrics as host numbers).
        The first call compiles what the run needs (`compile`)."""
        self.compile(fs)
        s0, first = int(np.asarray(fs.steps)), self.first_learning_step()
        collect = min(n_steps, max(0, first - 1 - s0))
        acc = None
        for learn, k in ((False, collect), (True, n_steps - collect)):
            if k:
                fs, a = self._chunks[learn](fs, jnp.asarray(k, jnp.int32))
                acc = a if acc is None else jax.tree.map(jnp.add, acc, a)
        acc = jax.tree.map(np.asarray, acc)
        grad_steps, episodes = int(acc["gradient_steps"]), int(acc["episodes"])
        out = {k: (float(acc[k]) / grad_steps if grad_steps else None) for k in self.algo.metric_keys}
        out["episodes"] = episodes
        out["episode_return"] = float(acc["episode_return_sum"]) / episodes if episodes else None
        out["gradient_steps"] = grad_steps
        out["replay_ratio"] = grad_steps * self.rs.batch_size / (n_steps * self.B)
        out.update(self.algo.host_metrics(int(np.asarray(fs.steps)) * self.B))
        out["buffer_size"] = int(np.asarray(fs.buffer.size))
        return fs, out

    def last_returns(self, fs: ReplayState) -> Optional[float]:
        count = int(np.asarray(fs.ring_count))
        return float(np.asarray(fs.ring)[:count].mean()) if count else None

    def restore(self, state: dict, seed: int) -> ReplayState:
        """A ReplayState from a checkpoint's state dict (buffer, env states and keys included)."""
        from srljax.checkpoint import into
        return jax.tree.map(jnp.asarray, into(jax.tree.map(np.asarray, self.init(seed)), state,
                                              "checkpointed run state"))

    def host_learner(self, fs: ReplayState):
        return jax.tree.map(np.asarray, fs.learner)


def train(trainer: ReplayTrainer, fs: ReplayState, logger=None, checkpointer=None, t0: Optional[float] = None,
          env_steps0: int = 0):
    """Run `trainer` from `fs` to `cfg.total_env_steps`; returns (final state, summary). Env steps
    are counted on the host. Ctrl-C or SIGTERM saves the state after the last completed call first."""
    t0 = time.perf_counter() if t0 is None else t0
    cfg, B = trainer.cfg, trainer.B
    total = math.ceil(cfg.total_env_steps / B)
    per_log = max(1, cfg.log_every_env_steps // B)
    steps0 = done = int(np.asarray(fs.steps))
    steps_at = lambda steps: int(env_steps0) + (steps - steps0) * B   # noqa: E731
    compile_s = train_s = 0.0
    timed_steps = logs = 0
    saved = done
    try:
        while done < total:
            n = min(per_log, total - done)
            t = time.perf_counter()
            supervisor.check_interrupt()        # Ctrl-C / SIGTERM: raised here, between calls
            new, m = trainer.chunk(fs, n)
            fs = new
            dt = time.perf_counter() - t
            if logs == 0:
                compile_s = dt
            else:
                train_s += dt
                timed_steps += n * B
            done += n
            logs += 1
            env_steps = steps_at(done)
            row = {"env_steps": env_steps, "wall_s": time.perf_counter() - t0, "steps_per_s": n * B / dt,
                   "episode_return": m.pop("episode_return"),
                   "policy_version": int(np.asarray(fs.learner.updates)), **m}
            if logger is not None:
                logger.log(row)
            if checkpointer is not None and (logs % cfg.checkpoint_every_logs == 0 or done >= total):
                checkpointer.save(done, fs, meta={"env_steps": env_steps})
                saved = done
    except KeyboardInterrupt:
        steps = int(np.asarray(fs.steps))
        if checkpointer is not None and steps > saved:
            checkpointer.save(steps, fs, meta={"env_steps": steps_at(steps)})
            sys.stderr.write(f"srljax: checkpoint saved at env-batch step {steps}, {steps_at(steps):,} env steps\n")
        raise
    env_steps = steps_at(done)
    wall = time.perf_counter() - t0
    summary = {"env_steps": env_steps, "wall_s": wall,
               "steps_per_s": (timed_steps / train_s) if train_s > 0 else env_steps / wall,
               "steps_per_s_overall": env_steps / wall, "compile_s": compile_s,
               "episode_return": trainer.last_returns(fs), "updates": int(np.asarray(fs.learner.updates)),
               "devices": 1, "skipped_steps": 0}
    return fs, summary
