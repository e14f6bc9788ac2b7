"""Fused mode (Podracer's "Anakin"): env, inference and learning in one jitted program per device.

Per update and per device: a rollout of T steps of the local envs (`lax.scan`), then the learner's
update (GAE, epochs, minibatches), with gradients and normaliser statistics averaged over devices
by `pmean`. The per-device program runs under `jax.shard_map` over a one-axis `Mesh` of the local
devices (`jit` of the whole; state arrays carry a leading device axis). A run is a sequence of
`chunk(n)` calls, each `n` updates inside one `while_loop` that returns summed metrics; the host
logs between chunks.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from srljax import envs
from srljax.dataflow import supervisor
from srljax.envs.core import JaxEnv, State
from srljax.envs.spaces import Box
from srljax.errors import NonFiniteError, UserError
from srljax.learners import registry
from srljax.learners.learner import Learner, LearnerState

AXIS = "devices"
RING = 100  # completed-episode returns kept for the summary (last 100 episodes)


@struct.dataclass
class FusedState:
    learner: LearnerState
    env: State
    key: jax.Array            # per device: action sampling
    ring: jax.Array           # [RING // devices] returns of the latest completed episodes
    ring_ptr: jax.Array
    ring_count: jax.Array
    env_steps: jax.Array      # global, identical on every device


def sharded(mesh: Mesh, fn, in_specs):
    """`fn` written for one device, jitted over `mesh`: arguments with spec `P(AXIS)` (and every
    output) carry a leading device axis, one block per device; `P()` ones are replicated.
    Collectives over `AXIS` (pmean, psum, axis_index) inside `fn` span the devices."""
    def block(*args):
        args = [jax.tree.map(lambda x: x[0], a) if spec == P(AXIS) else a for a, spec in zip(args, in_specs)]
        return jax.tree.map(lambda x: x[None], fn(*args))

    return jax.jit(jax.shard_map(block, mesh=mesh, in_specs=in_specs, out_specs=P(AXIS), check_vma=False))


def device_index(axis: Optional[str]):
    """This device's index on the mesh axis (0 without one)."""
    return jax.lax.axis_index(axis) if axis is not None else jnp.zeros((), jnp.int32)


def record_episodes(fs, returns, ended, ring_size: int, axis: Optional[str]):
    """Sum and count of the episodes completed (over all devices), and this device's ring of the
    latest `ring_size` returns (`fs` has `ring`, `ring_ptr`, `ring_count`): (fs, sum, count)."""
    r, e = returns.reshape(-1), ended.reshape(-1)
    ret_sum, count = jnp.sum(r * e), jnp.sum(e)
    if axis is not None:
        ret_sum, count = jax.lax.psum((ret_sum, count), axis)
    rank = jnp.cumsum(e.astype(jnp.int32))            # 1-based order of each completed episode
    total = rank[-1]
    keep = (e > 0) & (rank > total - ring_size)
    idx = jnp.where(keep, (fs.ring_ptr + rank - 1) % ring_size, ring_size)
    fs = fs.replace(ring=fs.ring.at[idx].set(r, mode="drop"), ring_ptr=(fs.ring_ptr + total) % ring_size,
                    ring_count=jnp.minimum(fs.ring_count + total, ring_size))
    return fs, ret_sum, count


def ring_mean(fs) -> Optional[float]:
    """Mean return of the latest completed episodes in the device rings (up to 100 in all)."""
    ring, count = np.asarray(fs.ring), np.asarray(fs.ring_count)
    vals = np.concatenate([ring[d, : count[d]] for d in range(ring.shape[0])])
    return float(vals.mean()) if vals.size else None


class FusedTrainer:
    """Builds the env, the learner and the chunk function, sharded over the local devices, for one config."""

    def __init__(self, cfg, loss: Optional[Callable] = None, devices=None, env=None):
        """`env`: a user's JAX env object in place of `cfg.env.id` (`srljax.envs.custom`)."""
        self.cfg = cfg
        self.devices = list(devices or jax.local_devices())
        n_dev = len(self.devices)
        if cfg.env.num_envs % n_dev:
            raise UserError(f"env.num_envs={cfg.env.num_envs} does not split evenly over {n_dev} devices; "
                            f"use a multiple of {n_dev}")
        self.local_envs = cfg.env.num_envs // n_dev
        # On one device there is nothing to average: no collectives at all (XLA's CPU all-reduce
        # over a one-device group is not free, and runs several times per gradient step).
        self.axis = AXIS if n_dev > 1 else None
        if env is None:
            self.env: JaxEnv = envs.make(cfg.env.id, num_envs=self.local_envs, **cfg.env.kwargs)
        else:
            from srljax.envs.custom import jax_env
            self.env = jax_env(env, self.local_envs)
        self.T = cfg.rollout.rollout_len
        self.algo: Learner = registry.for_config(cfg).build(cfg, self.env.observation_space, self.env.action_space,
                                                            axis_name=self.axis, loss=loss)
        self.ring_size = max(1, -(-RING // n_dev))
        self.max_skips = cfg.rollout.max_nonfinite_updates * cfg.ppo.epochs * cfg.ppo.minibatches
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        self._init = sharded(self.mesh, self._init_device, (P(AXIS),))
        self._chunk = sharded(self.mesh, self._chunk_device, (P(AXIS), P()))

    # -- per device ----------------------------------------------------------------------------
    def _init_device(self, seed):
        key = jax.random.PRNGKey(seed)
        learner_key, env_key, act_key = jax.random.split(key, 3)
        dev = device_index(self.axis)
        env_state = self.env.reset(jax.random.fold_in(env_key, dev))
        example = self._rollout_shapes(env_state)
        learner = self.algo.init(learner_key, example)
        zero = jnp.zeros((), jnp.int32)
        return FusedState(learner=learner, env=env_state, key=jax.random.fold_in(act_key, dev),
                          ring=jnp.zeros((self.ring_size,), jnp.float32), ring_ptr=zero, ring_count=zero,
                          env_steps=jnp.zeros((), jnp.int32))

    def _rollout_shapes(self, env_state):
        """A one-step batch with the rollout's structure (zeros), for `init`."""
        space = self.env.action_space
        action = jnp.zeros((1, self.local_envs) + space.shape, jnp.float32 if isinstance(space, Box) else jnp.int32)
        zeros = jnp.zeros((1, self.local_envs), jnp.float32)
        obs = jax.tree.map(lambda x: x[None], env_state.obs)
        return {"obs": obs, "action": action, "logp": zeros, "reward": zeros, "terminated": zeros,
                "truncated": zeros, "final_obs": obs}

    def _rollout(self, policy, env_state, key):
        # Reset states for all T steps drawn in one batched call (`JaxEnv.presample`).
        env_state, pre = self.env.presample(env_state, self.T)

        def step(state, xs):
            k, fresh = xs
            action, logp, value = self.algo.act(policy, state.obs, k)
            nxt = self.env.step(state, action) if fresh is None else self.env.step(state, action, fresh)
            out = {"obs": state.obs, "action": action, "logp": logp, "obs_value": value, "reward": nxt.reward,
                   "terminated": nxt.done.astype(jnp.float32), "truncated": nxt.truncated.astype(jnp.float32),
                   "final_obs": nxt.final_obs}
            ep = (nxt.metrics["episode_return"], nxt.metrics["episode_ended"])
            return nxt, (out, ep)

        env_state, (batch, ep) = jax.lax.scan(step, env_state, (jax.random.split(key, self.T), pre))
        return env_state, batch, ep

    def _one_update(self, fs: FusedState):
        key, k = jax.random.split(fs.key)
        env_state, batch, (ep_ret, ep_end) = self._rollout(self.algo.policy_params(fs.learner), fs.env, k)
        env_ids = device_index(self.axis) * self.local_envs + jnp.arange(self.local_envs)
        learner, metrics = self.algo.update(fs.learner, batch, env_ids)
        fs = fs.replace(learner=learner, env=env_state, key=key,
                        env_steps=fs.env_steps + self.T * self.cfg.env.num_envs)
        fs, ret_sum, count = record_episodes(fs, ep_ret, ep_end, self.ring_size, self.axis)
        return fs, {**metrics, "episode_return_sum": ret_sum, "episodes": count}

    def _chunk_device(self, fs: FusedState, n_updates):
        metric_shapes = jax.eval_shape(self._one_update, fs)[1]
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

        def cond(carry):
            i, fs, _ = carry
            return (i < n_updates) & (fs.learner.consecutive_skips < self.max_skips)

        def body(carry):
            i, fs, acc = carry
            fs, m = self._one_update(fs)
            return i + 1, fs, jax.tree.map(jnp.add, acc, m)

        done, fs, acc = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), fs, zeros))
        return fs, acc, done

    # -- host ----------------------------------------------------------------------------------
    def init(self, seed: int) -> FusedState:
        return self._init(np.full((len(self.devices),), seed, np.uint32))

    def chunk(self, fs: FusedState, n_updates: int):
        """Run `n_updates` updates; returns (state, metrics for the interval as host floats)."""
        fs, acc, done = self._chunk(fs, jnp.asarray(n_updates, jnp.int32))
        acc = jax.tree.map(lambda x: np.asarray(x)[0], acc)
        done = int(np.asarray(done)[0])
        n = max(done, 1)
        out = {k: float(v) / n for k, v in acc.items() if k not in ("episode_return_sum", "episodes", "skipped_steps")}
        out["episodes"] = int(acc["episodes"])
        out["episode_return"] = float(acc["episode_return_sum"] / acc["episodes"]) if acc["episodes"] else None
        out["skipped_steps"] = int(acc["skipped_steps"])
        out["updates"] = done
        return fs, out

    # the host loop's view (`train`): progress in updates of `unit_env_steps` env steps
    unit_name = "update"

    @property
    def unit_env_steps(self) -> int:
        return self.cfg.steps_per_update()

    @property
    def total_units(self) -> int:
        return self.cfg.num_updates()

    def progress(self, fs: FusedState) -> int:
        """Updates taken (waits for `fs`)."""
        return int(np.asarray(fs.learner.updates)[0])

    policy_version = progress

    def check(self, fs: FusedState, done: int) -> None:
        """Stop the run once `max_skips` gradient steps in a row were not finite."""
        skips = int(np.asarray(fs.learner.consecutive_skips)[0])
        if skips >= self.max_skips:
            raise NonFiniteError(f"stopped at update {done}: {skips} consecutive gradient steps had "
                                 f"non-finite gradients (limit rollout.max_nonfinite_updates="
                                 f"{self.cfg.rollout.max_nonfinite_updates} updates)")

    def summary_counts(self, fs: FusedState) -> dict:
        return {"updates": self.progress(fs), "devices": len(self.devices),
                "skipped_steps": int(np.asarray(fs.learner.skipped)[0])}

    def last_returns(self, fs: FusedState) -> Optional[float]:
        """Mean return of the latest completed episodes (up to 100 over all devices)."""
        return ring_mean(fs)

    def restore(self, state: dict, seed: int) -> FusedState:
        """A FusedState from a checkpoint's state dict.

        The learner (parameters, optimiser, normaliser, counters) always comes back; the env
        states, sampling keys and episode ring come back when the device count (and the env
        adapter's state layout) is unchanged, and start afresh otherwise (the run goes on from
        the same update and env-step count).
        """
        from srljax.checkpoint import CheckpointError, into
        fresh = jax.tree.map(np.asarray, self.init(seed))
        n_dev = len(self.devices)
        learner0 = into(jax.tree.map(lambda x: x[0], fresh.learner),
                        jax.tree.map(lambda x: np.asarray(x)[0], state["learner"]), "checkpointed learner")
        learner = jax.tree.map(lambda x: np.stack([x] * n_dev), learner0)
        stored_devices = np.shape(state["env_steps"])[0]
        if stored_devices == n_dev:
            try:
                fs = into(fresh, state, "checkpointed run state")
                return fs.replace(learner=learner)
            except CheckpointError:
                pass            # env states of another layout (an older adapter's): start afresh
        steps = np.full((n_dev,), np.asarray(state["env_steps"])[0], np.int32)
        return fresh.replace(learner=learner, env_steps=steps)

    def host_learner(self, fs: FusedState) -> LearnerState:
        """The learner state of device 0 as host numpy (replicas are identical)."""
        return jax.tree.map(lambda x: np.asarray(x[0]), fs.learner)


def train(trainer, fs, logger=None, checkpointer=None, t0: Optional[float] = None, env_steps0: int = 0):
    """Run `trainer` (a `learners.protocols.FusedLoopTrainer`: a `FusedTrainer`, or
    `fused_replay.ReplayTrainer`) from `fs` (fresh, or restored from a checkpoint: the run goes on
    from its own count, and `env_steps0` is the checkpoint's env-step count) to
    `cfg.total_env_steps`; returns (final state, summary).

    The host loop of fused mode: one `trainer.chunk` call per log row, a checkpoint every
    `checkpoint_every_logs` rows and at the end. The trainer counts its progress in units of
    `trainer.unit_env_steps` env steps (`progress(fs)`: PPO updates, or env-batch steps) up to
    `trainer.total_units`; env steps are counted on the host (Python ints: no overflow). Ctrl-C or
    SIGTERM saves the state after the last completed call as a checkpoint first."""
    t0 = time.perf_counter() if t0 is None else t0
    cfg, unit = trainer.cfg, trainer.unit_env_steps
    total = trainer.total_units
    per_log = max(1, cfg.log_every_env_steps // unit)
    start = done = trainer.progress(fs)
    steps_at = lambda units: int(env_steps0) + (units - start) * unit   # noqa: E731
    compile_s = 0.0
    train_s = 0.0        # time and env steps of every call after the first (which compiles)
    timed_steps = 0
    logs = 0
    saved = done
    try:
        while done < total:
            n = min(per_log, total - done)
            t = time.perf_counter()
            supervisor.check_interrupt()        # Ctrl-C / SIGTERM: raised here, between calls
            new, m = trainer.chunk(fs, n)
            now = trainer.progress(new)         # waits for the call
            fs = new
            dt = time.perf_counter() - t
            if logs == 0:
                compile_s = dt
            else:
                train_s += dt
                timed_steps += (now - done) * unit
            steps_done, done = (now - done) * unit, now
            logs += 1
            env_steps = steps_at(done)
            row = {"env_steps": env_steps, "wall_s": time.perf_counter() - t0, "steps_per_s": steps_done / dt,
                   "episode_return": m.pop("episode_return"), "policy_version": trainer.policy_version(fs), **m}
            if logger is not None:
                logger.log(row)
            trainer.check(fs, done)
            if checkpointer is not None and (logs % cfg.checkpoint_every_logs == 0 or done >= total):
                checkpointer.save(done, fs, meta={"env_steps": env_steps})
                saved = done
    except KeyboardInterrupt:
        units = trainer.progress(fs)            # the state of the last completed call
        if checkpointer is not None and units > saved:
            checkpointer.save(units, fs, meta={"env_steps": steps_at(units)})
            sys.stderr.write(f"srljax: checkpoint saved at {trainer.unit_name} {units}, {steps_at(units):,} env steps\n")
        raise
    env_steps = steps_at(done)
    wall = time.perf_counter() - t0
    summary = {"env_steps": env_steps, "wall_s": wall,
               "steps_per_s": (timed_steps / train_s) if train_s > 0 else env_steps / wall,
               "steps_per_s_overall": env_steps / wall, "compile_s": compile_s,
               "episode_return": trainer.last_returns(fs), **trainer.summary_counts(fs)}
    return fs, summary
