"""The trainer worker: consumes samples, learns, publishes parameters; stops the job at the end.

It composes three parts: a `SampleIntake` (staging, staleness, counts), a `TrainerSync` (the
cross-trainer steps of each update) and, on trainer 0, a `LeadReporter` (metrics lines,
checkpoints). A resumed trainer continues the env-step count, policy version and drop counters
from the checkpoint's header (`resume`).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Dict, Optional, Sequence

import jax
import numpy as np

from srljax.dataflow.launch import supervisor
from srljax.dataflow.roles.intake import SampleIntake
from srljax.dataflow.roles.reporting import LeadReporter
from srljax.dataflow.wire.streams import SampleConsumer, release
from srljax.dataflow.roles.sync import TrainerSync
from srljax.errors import NonFiniteError


@dataclasses.dataclass
class TrainerStreams:
    """A trainer's ends: samples in, parameters out (trainer 0), STOP out and FIN in."""

    consumer: SampleConsumer
    publisher: Any                   # trainer 0's parameter publisher (None on the others)
    control: Any
    sources: Sequence[int]           # ranks that post to it: they say FIN at the end
    stop_ranks: Sequence[int]        # ranks trainer 0 tells to STOP


@dataclasses.dataclass
class TrainerParts:
    intake: SampleIntake
    sync: TrainerSync
    reporter: Optional[LeadReporter] = None   # trainer 0 only


class TrainerWorker:
    """Learns from whatever the actors post, within a bound on policy lag."""

    def __init__(self, codec, state, update: Callable, streams: TrainerStreams, parts: TrainerParts, cfg,
                 start_time: Optional[float] = None):
        """`update(state, batch) -> (state, metrics)`: the jitted learner update on a staged batch;
        `cfg`: the whole config (its `distributed`, `ppo` and budget fields are read)."""
        self.codec, self.state, self.update = codec, state, update
        self.streams, self.control, self.consumer = streams, streams.control, streams.consumer
        self.publisher = streams.publisher
        self.intake, self.sync, self.reporter = parts.intake, parts.sync, parts.reporter
        self.total_env_steps = cfg.total_env_steps
        self.stop_at_return = cfg.distributed.stop_at_return
        self.publish_every = cfg.distributed.publish_every
        self.max_nonfinite_updates = cfg.rollout.max_nonfinite_updates
        self.grad_steps = cfg.ppo.epochs * cfg.ppo.minibatches
        self.start = time.perf_counter() if start_time is None else start_time
        self.version = 0
        self.total_steps = 0          # over all trainers
        self.last_log = (self.start, 0)
        self.last_metrics: Dict[str, float] = {}
        self.solved_at: Optional[float] = None
        self.first_update_at: Optional[float] = None
        self.nonfinite_in_a_row = 0
        self.resumed_from: Optional[int] = None
        self.stopping = self.done = False

    def resume(self, meta: Dict[str, Any]) -> None:
        """Continue the counters of a checkpoint's header."""
        self.version = int(meta["version"])
        self.total_steps = self.resumed_from = int(meta["env_steps"])
        self.intake.restore(meta)
        self.last_log = (self.start, self.total_steps)
        if self.reporter is not None:
            self.reporter.saved_version = self.version

    @property
    def checkpointer(self):
        return None if self.reporter is None else self.reporter.checkpointer

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
        self.intake.take(sample, self.version)
        if self.intake.ready:
            self._learn()
        return True

    def _learn(self) -> None:
        before = self.state
        if self.first_update_at is None:
            supervisor.beat(grace=True)      # the first update compiles
        metrics = self._apply(self.intake.take_batch())
        self.version += 1
        self.last_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        self.state = self.sync.merge_stats(before, self.state)
        self._check_finite()
        if self.first_update_at is None:
            self.first_update_at = time.perf_counter()
            self.steps_at_first = self.total_steps + int(self.intake.pending[0])
        if self.publisher is not None and self.version % self.publish_every == 0:
            self.publisher.publish(self.codec.flatten(self.state), self.version)
        stop = self._sync_and_decide()
        now = time.perf_counter()
        if self.reporter is not None and self.reporter.due(now, stop):
            self._log(now)
        if stop:
            self._begin_stop()

    def _apply(self, batch):
        """The learner update on one staged batch; returns its metrics."""
        self.state, metrics = self.update(self.state, batch)
        return metrics

    def _check_finite(self) -> None:
        """Fail the run (every rank) after too many updates in a row skipped for non-finite gradients."""
        skipped_all = self.last_metrics.get("skipped_steps", 0.0) >= self.grad_steps
        self.nonfinite_in_a_row = self.nonfinite_in_a_row + 1 if skipped_all else 0
        if self.nonfinite_in_a_row >= self.max_nonfinite_updates:
            raise NonFiniteError(f"stopped at update {self.version}: {self.nonfinite_in_a_row} updates in a row "
                                 f"had only non-finite gradients (limit rollout.max_nonfinite_updates="
                                 f"{self.max_nonfinite_updates}; lower ppo.lr or check the env's rewards and "
                                 "observations)")

    def _sync_and_decide(self) -> bool:
        """Totals over trainers (one small allreduce per update), and the shared stop decision."""
        window = self.intake.window_return()
        if self.stop_at_return is not None and window >= self.stop_at_return and self.solved_at is None:
            self.solved_at = time.perf_counter() - self.start
        totals, want_stop = self.sync.totals(self.intake.take_pending(), self.solved_at is not None)
        self.total_steps += int(totals[0])
        return want_stop or self.total_steps >= self.total_env_steps

    def _log(self, now: float) -> None:
        t0, steps0 = self.last_log
        self.last_log = (now, self.total_steps)
        row = {"env_steps": self.total_steps, "wall_s": now - self.start,
               "steps_per_s": (self.total_steps - steps0) / max(now - t0, 1e-9), **self.intake.interval(),
               "policy_version": self.version, "skipped_steps_total": int(getattr(self.state, "skipped", 0)), **self.last_metrics}
        if self.reporter.log(row, now):
            self.save_checkpoint()

    def save_checkpoint(self) -> bool:
        """Trainer 0: the learner state and the counters a resumed run continues from."""
        if self.reporter is None:
            return False
        return self.reporter.save(self.version, self.state,
                                  {"env_steps": self.total_steps, "version": self.version, **self.intake.counters()})

    def _begin_stop(self) -> None:
        self.stopping = True
        self.end_time = time.perf_counter()
        self.save_checkpoint()
        self.control.begin_end()            # from here, rank 0 names a rank that does not come
        if self.publisher is not None:
            if hasattr(self.publisher, "flush"):
                self.publisher.flush(end=getattr(self.control, "end", None))
            self.control.send_stop(self.streams.stop_ranks)

    def _drain(self) -> bool:
        """After the last update: take (and discard) samples until every source has said FIN."""
        progress = self.consumer.consume() is not None
        if set(self.streams.sources) <= set(self.control.poll_fins()):
            self.close()
            self.done = True
            return True
        return progress

    def close(self) -> None:
        release(self.consumer)

    # -- results -------------------------------------------------------------------------------
    def params_digest(self) -> str:
        """A digest of what the policy acts with: network parameters and normaliser statistics."""
        import hashlib
        return hashlib.sha256(self.codec.flatten(self.state).tobytes()).hexdigest()[:16]

    def summary(self) -> Dict[str, Any]:
        end = getattr(self, "end_time", time.perf_counter())
        wall = end - self.start
        overall = (self.total_steps - (self.resumed_from or 0)) / max(wall, 1e-9)   # this session's steps
        intake = self.intake
        out = {"env_steps": self.total_steps, "wall_s": wall, "steps_per_s": overall,
               "steps_per_s_overall": overall,
               "episode_return": float(np.mean(intake.last100)) if intake.last100 else None,
               "policy_version": self.version, "updates": self.version,
               "dropped_samples": intake.dropped, "dropped_env_steps": intake.dropped_steps,
               "solved_at_s": self.solved_at, "skipped_steps": int(getattr(self.state, "skipped", 0)),
               "nonfinite_env_resets": intake.env_resets}
        if self.resumed_from is not None:
            out["resumed_from_env_steps"] = self.resumed_from
        if self.first_update_at is not None and end > self.first_update_at:
            # Throughput once the update is compiled (what RLlib's figure measures, after its first iteration).
            out["first_update_s"] = self.first_update_at - self.start
            # `steps_per_s` means this in both modes (fused mode: after the first, compiling, call).
            out["steps_per_s"] = (self.total_steps - self.steps_at_first) / (end - self.first_update_at)
        return out
