"""The trainer worker: consumes samples, drops stale ones, learns, publishes parameters.

With several trainer ranks, every gradient is averaged across them inside the jitted update
(`mpi_grad_reduce`: an MPI allreduce of the flattened gradients through `io_callback`), and each
update ends with one small allreduce of the counters that decide when to stop, so every trainer
runs the same number of updates and their parameters stay identical.

Trainer 0 writes checkpoints (learner state as host numpy, counters in the header) every
`checkpoint_every_logs` metric lines and after the last update; a resumed trainer continues
the env-step count, policy version and drop counters from the checkpoint's header.
"""
from __future__ import annotations

import collections
import time
from typing import Any, Dict, List, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from srljax.dataflow.launch import wait_for
from srljax.dataflow.streams import META, MessageLayout, SampleConsumer
from srljax.dataflow.workers import learner_fields


def mpi_grad_reduce(comm):
    """`grad_reduce` for the learner: the mean of a gradient pytree over the ranks of `comm`."""
    from jax.experimental import io_callback
    from mpi4py import MPI

    def host_mean(flat):
        send = np.ascontiguousarray(flat, np.float32)
        out = np.empty_like(send)
        req = comm.Iallreduce(send, out, op=MPI.SUM)
        wait_for(req.Test, 600, "the gradient allreduce")
        return out / np.float32(comm.size)

    def reduce(grads):
        flat, unravel = ravel_pytree(grads)
        flat = flat.astype(jnp.float32)
        mean = io_callback(host_mean, jax.ShapeDtypeStruct(flat.shape, jnp.float32), flat, ordered=False)
        return unravel(mean.astype(flat.dtype))

    return reduce


def merge_obs_norm(comm, before, after):
    """Make every trainer's observation statistics those of all trainers' batches together.

    Each trainer folded its own batch into the same `before` statistics (count, mean, M2); the
    batches' counts, sums and sums of squares are recovered, summed over trainers, and refolded.
    """
    from mpi4py import MPI

    def merge(b, a):
        c0, m0, q0 = float(b.count), np.asarray(b.mean, np.float64), np.asarray(b.m2, np.float64)
        c1, m1, q1 = float(a.count), np.asarray(a.mean, np.float64), np.asarray(a.m2, np.float64)
        n = c1 - c0
        s = c1 * m1 - c0 * m0
        sq = (q1 + c1 * m1 ** 2) - (q0 + c0 * m0 ** 2)
        vec = np.concatenate([[n], s.ravel(), sq.ravel()])
        tot = np.empty_like(vec)
        comm.Allreduce(vec, tot, op=MPI.SUM)
        k = m0.size
        count = c0 + tot[0]
        mean = (c0 * m0.ravel() + tot[1:1 + k]) / count
        m2 = q0.ravel() + c0 * m0.ravel() ** 2 + tot[1 + k:] - count * mean ** 2
        return type(a)(count=jnp.asarray(count, jnp.float32), mean=jnp.asarray(mean.reshape(m0.shape), jnp.float32),
                       m2=jnp.asarray(np.maximum(m2, 0.0).reshape(m0.shape), jnp.float32))

    is_stats = lambda x: x is None or (hasattr(x, "m2") and hasattr(x, "count"))  # noqa: E731
    return jax.tree.map(lambda b, a: None if b is None else merge(b, a), before, after, is_leaf=is_stats)


class TrainerWorker:
    """Learns from whatever the actors post, within a bound on policy lag."""

    def __init__(self, algo, state, codec, consumer: SampleConsumer, layout: MessageLayout, control, *,
                 sources: Sequence[int], posts_per_update: int, max_staleness: int, total_env_steps: int,
                 publisher=None, publish_every: int = 1, stop_ranks: Sequence[int] = (), logger=None,
                 log_interval_s: float = 1.0, stop_at_return: Optional[float] = None, comm=None,
                 start_time: Optional[float] = None, max_nonfinite_updates: int = 10, checkpointer=None,
                 checkpoint_every_logs: int = 10, resume_meta: Optional[Dict[str, Any]] = None, packer=None,
                 episode_keys: Sequence[str] = ("return", "length")):
        self.state, self.codec, self.consumer, self.control = state, codec, consumer, control
        self.publisher, self.publish_every, self.stop_ranks = publisher, publish_every, list(stop_ranks)
        self.sources = set(sources)
        self.k_needed, self.max_staleness = posts_per_update, max_staleness
        self.total_env_steps, self.stop_at_return = total_env_steps, stop_at_return
        self.logger, self.log_interval_s, self.comm = logger, log_interval_s, comm
        B = layout.spec["terminated"][0][1]
        self.B = B
        self.fields = learner_fields(layout)
        self.staging = {f: np.zeros((layout.spec[f][0][0], B * posts_per_update) + layout.spec[f][0][2:],
                                    layout.spec[f][1]) for f in self.fields}
        self.k = 0
        from srljax.dataflow.multiagent import StageStats, learner_batch
        self.update = jax.jit(lambda state, batch: algo.update(state, learner_batch(batch, packer)))
        self.stage = StageStats(episode_keys)
        self.version = 0
        self.start = time.perf_counter() if start_time is None else start_time
        # Counters: this trainer's own, and the totals over trainers (equal when there is one).
        self.env_steps = self.total_steps = 0
        self.dropped = self.dropped_steps = 0
        self.staleness: List[int] = []
        self.interval_returns: List[float] = []
        self.last100 = collections.deque(maxlen=100)
        self.solved_at: Optional[float] = None
        self.last_metrics: Dict[str, float] = {}
        self.last_log = (self.start, 0)
        self.first_update_at: Optional[float] = None
        self.stopping = False
        self.done = False
        self._pending_totals = np.zeros(4)        # steps, dropped, dropped steps, episodes: since last sync
        self.nonfinite_in_a_row = 0
        self.max_nonfinite_updates = max_nonfinite_updates
        settings = getattr(algo, "settings", None)
        self.grad_steps = settings.epochs * settings.minibatches if settings is not None else 1
        self.checkpointer, self.checkpoint_every_logs = checkpointer, checkpoint_every_logs
        self.logs = 0
        self.saved_version = -1
        self.env_resets = 0               # envs reset by actors for non-finite values (env.on_nonfinite=reset)
        self.resumed_from: Optional[int] = None
        if resume_meta is not None:
            self._resume(resume_meta)

    def _resume(self, meta: Dict[str, Any]) -> None:
        self.version = self.saved_version = int(meta["version"])
        self.total_steps = self.resumed_from = int(meta["env_steps"])
        self.dropped, self.dropped_steps = int(meta.get("dropped", 0)), int(meta.get("dropped_steps", 0))
        self.env_resets = int(meta.get("env_resets", 0))
        self.last100.extend(meta.get("last100", []))
        self.last_log = (self.start, self.total_steps)

    # -- the loop ------------------------------------------------------------------------------
    def start_publishing(self) -> None:
        if self.publisher is not None:
            self.publisher.publish(self.codec.flatten(self.state), self.version)

    def poll(self) -> bool:
        if self.stopping:
            return self._drain()
        if self.publisher is not None and hasattr(self.publisher, "progress"):
            self.publisher.progress()
        sample = self.consumer.consume()
        if sample is None:
            return False
        self._take(sample)
        if self.k == self.k_needed:
            self._learn()
        return True

    def _take(self, sample) -> None:
        data = sample.data
        steps = data["terminated"].size        # env steps: [T, B] (rewards may be per agent)
        self.env_steps += steps
        self._pending_totals[0] += steps
        if "env_resets" in data:
            self.env_resets += int(data["env_resets"][0])
        n_eps = int(data[META][2])
        if n_eps:
            returns = data["episodes"][:n_eps, 0].tolist()
            self.stage.add(data["episodes"][:n_eps])
            self.interval_returns += returns
            self.last100.extend(returns)
            self._pending_totals[3] += n_eps
        lag = self.version - sample.version
        if lag > self.max_staleness:
            self.dropped += 1
            self.dropped_steps += steps
            self._pending_totals[1:3] += (1, steps)
            return
        self.staleness.append(lag)
        cols = slice(self.k * self.B, (self.k + 1) * self.B)
        for f in self.fields:
            self.staging[f][:, cols] = data[f]
        self.k += 1

    def _learn(self) -> None:
        self.k = 0
        before = self.state
        self.state, metrics = self.update(self.state, self.staging)
        self.version += 1
        self.last_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if self.comm is not None and self.comm.size > 1:
            # Running statistics folded from each trainer's own batch: merged, so they stay identical.
            for name in ("obs_norm", "value_norm"):
                if getattr(before, name, None) is not None:
                    merged = merge_obs_norm(self.comm, getattr(before, name), getattr(self.state, name))
                    self.state = self.state.replace(**{name: merged})
        self._check_finite(metrics)
        if self.first_update_at is None:
            self.first_update_at = time.perf_counter()
            self.steps_at_first = self.total_steps + int(self._pending_totals[0])
        if self.publisher is not None and self.version % self.publish_every == 0:
            self.publisher.publish(self.codec.flatten(self.state), self.version)
        stop = self._sync_and_decide()
        now = time.perf_counter()
        if self.logger is not None and (now - self.last_log[0] >= self.log_interval_s or stop):
            self._log(now)
        if stop:
            self._begin_stop()

    def _check_finite(self, metrics) -> None:
        """Fail the run (every rank) after too many updates in a row skipped for non-finite gradients."""
        skipped_all = self.last_metrics.get("skipped_steps", 0.0) >= self.grad_steps
        self.nonfinite_in_a_row = self.nonfinite_in_a_row + 1 if skipped_all else 0
        if self.nonfinite_in_a_row >= self.max_nonfinite_updates:
            from srljax.dataflow.fused import NonFiniteError
            raise NonFiniteError(f"stopped at update {self.version}: {self.nonfinite_in_a_row} updates in a row "
                                 f"had only non-finite gradients (limit ppo.max_nonfinite_updates="
                                 f"{self.max_nonfinite_updates}; lower ppo.lr or check the env's rewards and "
                                 "observations)")

    def _sync_and_decide(self) -> bool:
        """Totals over trainers (one small allreduce per update), and the shared stop decision."""
        window = float(np.mean(self.last100)) if len(self.last100) == self.last100.maxlen else -np.inf
        if self.stop_at_return is not None and window >= self.stop_at_return and self.solved_at is None:
            self.solved_at = time.perf_counter() - self.start
        want_stop = float(self.solved_at is not None)
        if self.comm is not None and self.comm.size > 1:
            from mpi4py import MPI
            vec = np.append(self._pending_totals, want_stop)
            out = np.empty_like(vec)
            req = self.comm.Iallreduce(vec, out, op=MPI.SUM)
            wait_for(req.Test, 600, "the trainers' counter allreduce")
            self.total_steps += int(out[0])
            want_stop = out[4]
        else:
            self.total_steps += int(self._pending_totals[0])
        self._pending_totals[:] = 0
        return bool(want_stop) or self.total_steps >= self.total_env_steps

    def _log(self, now: float) -> None:
        t0, steps0 = self.last_log
        self.last_log = (now, self.total_steps)
        row = {"env_steps": self.total_steps, "wall_s": now - self.start,
               "steps_per_s": (self.total_steps - steps0) / max(now - t0, 1e-9),
               "episode_return": float(np.mean(self.interval_returns)) if self.interval_returns else None,
               "policy_version": self.version,
               "staleness_mean": float(np.mean(self.staleness)) if self.staleness else None,
               "staleness_max": int(np.max(self.staleness)) if self.staleness else None,
               "dropped_samples": self.dropped, "dropped_env_steps": self.dropped_steps,
               "skipped_steps_total": int(self.state.skipped), "nonfinite_env_resets": self.env_resets,
               **self.last_metrics, **self.stage.flush()}
        self.interval_returns, self.staleness = [], []
        self.logger.log(row)
        self.logs += 1
        if self.logs % self.checkpoint_every_logs == 0:
            self.save_checkpoint()

    def save_checkpoint(self) -> None:
        """Trainer 0: the learner state and the counters a resumed run continues from."""
        if self.checkpointer is None or self.saved_version == self.version:
            return
        meta = {"mode": "distributed", "env_steps": self.total_steps, "version": self.version,
                "dropped": self.dropped, "dropped_steps": self.dropped_steps, "env_resets": self.env_resets,
                "last100": [float(x) for x in self.last100]}
        self.checkpointer.save(self.version, {"learner": jax.device_get(self.state)}, meta=meta)
        self.saved_version = self.version
        run_dir = getattr(self.logger, "run_dir", None)
        if run_dir is not None:
            from srljax.dataflow.multiagent import plot_stage_stats
            plot_stage_stats(run_dir)          # stage_stats.png, for games that report stage statistics

    def _begin_stop(self) -> None:
        self.stopping = True
        self.end_time = time.perf_counter()
        self.save_checkpoint()
        if self.publisher is not None:
            if hasattr(self.publisher, "flush"):
                self.publisher.flush()
            self.control.send_stop(self.stop_ranks)

    def _drain(self) -> bool:
        """After the last update: take (and discard) samples until every source has said FIN."""
        progress = self.consumer.consume() is not None
        if self.sources <= set(self.control.poll_fins()):
            close = getattr(self.consumer, "close", None)
            self.consumer.consume()
            if close is not None:
                close()
            self.done = True
            return True
        return progress

    # -- results -------------------------------------------------------------------------------
    def params_digest(self) -> str:
        """A digest of what the policy acts with: network parameters and normaliser statistics."""
        import hashlib
        return hashlib.sha256(self.codec.flatten(self.state).tobytes()).hexdigest()[:16]

    def summary(self) -> Dict[str, Any]:
        end = getattr(self, "end_time", time.perf_counter())
        wall = end - self.start
        overall = (self.total_steps - (self.resumed_from or 0)) / max(wall, 1e-9)   # this session's steps
        out = {"env_steps": self.total_steps, "wall_s": wall, "steps_per_s": overall,
               "steps_per_s_overall": overall,
               "episode_return": float(np.mean(self.last100)) if self.last100 else None,
               "policy_version": self.version, "updates": self.version,
               "dropped_samples": self.dropped, "dropped_env_steps": self.dropped_steps,
               "solved_at_s": self.solved_at, "skipped_steps": int(self.state.skipped),
               "nonfinite_env_resets": self.env_resets}
        if self.resumed_from is not None:
            out["resumed_from_env_steps"] = self.resumed_from
        if self.first_update_at is not None and end > self.first_update_at:
            # Throughput once the update is compiled (what RLlib's figure measures, after its first iteration).
            out["first_update_s"] = self.first_update_at - self.start
            # `steps_per_s` means this in both modes (fused mode: after the first, compiling, call).
            out["steps_per_s"] = (self.total_steps - self.steps_at_first) / (end - self.first_update_at)
        return out
