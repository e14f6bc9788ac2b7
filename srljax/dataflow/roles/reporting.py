"""Trainer 0's reporting: metrics lines at `distributed.log_interval_s`, checkpoints, plots.

Checkpoints (every `checkpoint_every_logs` lines and after the last update) hold the learner
state as host numpy and, in the header, the counters a resumed run continues from.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

import jax


class LeadReporter:
    def __init__(self, logger, checkpointer, cfg, plot: Optional[Callable] = None):
        """`logger`: a `runlog.RunLogger`; `checkpointer`: a `checkpoint.Checkpointer` (or None);
        `plot(run_dir)`: the env's episode-statistics plot, redrawn at each checkpoint."""
        self.logger, self.checkpointer, self.plot = logger, checkpointer, plot
        self.interval_s = cfg.distributed.log_interval_s
        self.checkpoint_every = cfg.checkpoint_every_logs
        self.last_log_at = time.perf_counter()
        self.logs = 0
        self.saved_version = -1

    def due(self, now: float, stopping: bool) -> bool:
        return stopping or now - self.last_log_at >= self.interval_s

    def log(self, row: Dict[str, Any], now: float) -> bool:
        """Write a metrics line; True when a checkpoint is due after it."""
        self.last_log_at = now
        self.logger.log(row)
        self.logs += 1
        return self.logs % self.checkpoint_every == 0

    def save(self, version: int, state, meta: Dict[str, Any]) -> bool:
        """Checkpoint the learner state at `version` (once per version); False without a checkpointer."""
        if self.checkpointer is None or self.saved_version == version:
            return False
        self.checkpointer.save(version, {"learner": jax.device_get(state)}, meta={"mode": "distributed", **meta})
        self.saved_version = version
        run_dir = getattr(self.logger, "run_dir", None)
        if run_dir is not None and self.plot is not None:
            self.plot(run_dir)
        return True
