"""A trainer's sample intake: stage posted samples into update batches, drop stale ones, count.

Each update joins `distributed.posts_per_update` posted samples side by side (env columns); a
sample more than `distributed.max_staleness` policy versions behind the trainer is dropped and
counted. Episodes reported in every sample (stale or not) feed the returns and the game's own
episode statistics.
"""
from __future__ import annotations

import collections
from typing import Any, Dict, List, Mapping

import numpy as np

from srljax.dataflow.roles.multiagent import EpisodeStats
from srljax.dataflow.wire.schema import META, BatchSpec, Header

PENDING = ("steps", "dropped", "dropped_steps", "episodes")   # counted since the last cross-trainer sync


class EpisodeCounts:
    """What every trainer intake counts: env steps, resets, drops, the episodes its messages report
    (returns, the game's statistics) and the counts pending the next cross-trainer sync."""

    def __init__(self, stats: Mapping[str, str]):
        self.episode_stats = EpisodeStats(stats)
        self.env_steps = 0                        # this trainer's own
        self.pending = np.zeros(len(PENDING))
        self.dropped = self.dropped_steps = self.env_resets = 0
        self.interval_returns: List[float] = []
        self.last100: collections.deque = collections.deque(maxlen=100)

    def count_episodes(self, data) -> None:
        """The episodes a message reports, into the returns, game statistics and pending count."""
        n_eps = int(data[META][Header.EPISODES])
        if n_eps:
            returns = data["episodes"][:n_eps, 0].tolist()
            self.episode_stats.add(data["episodes"][:n_eps])
            self.interval_returns += returns
            self.last100.extend(returns)
            self.pending[3] += n_eps

    def take_pending(self) -> np.ndarray:
        out = self.pending.copy()
        self.pending[:] = 0
        return out

    def window_return(self) -> float:
        """Mean return of the last 100 episodes (-inf until there are 100)."""
        return float(np.mean(self.last100)) if len(self.last100) == self.last100.maxlen else -np.inf


class SampleIntake(EpisodeCounts):
    def __init__(self, spec: BatchSpec, posts_per_update: int, max_staleness: int, stats: Mapping[str, str]):
        super().__init__(stats)
        layout = spec.samples()
        self.B, self.needed, self.max_staleness = spec.B, posts_per_update, max_staleness
        self.fields = spec.learner_fields()
        self.staging = {f: np.zeros((layout.spec[f][0][0], spec.B * posts_per_update) + layout.spec[f][0][2:],
                                    layout.spec[f][1]) for f in self.fields}
        self.k = 0
        self.staleness: List[int] = []

    @property
    def ready(self) -> bool:
        return self.k == self.needed

    def take(self, sample, version: int) -> None:
        """Count a consumed sample and stage it, unless it lags `version` by too much."""
        data = sample.data
        steps = data["terminated"].size        # env steps: [T, B] (rewards may be per agent)
        self.env_steps += steps
        self.pending[0] += steps
        self.env_resets += int(data["env_resets"][0])
        self.count_episodes(data)
        lag = version - sample.version
        if lag > self.max_staleness:
            self.dropped += 1
            self.dropped_steps += steps
            self.pending[1:3] += (1, steps)
            return
        self.staleness.append(lag)
        cols = slice(self.k * self.B, (self.k + 1) * self.B)
        for f in self.fields:
            self.staging[f][:, cols] = data[f]
        self.k += 1

    def take_batch(self) -> Dict[str, np.ndarray]:
        """The staged update batch (valid until the next `take`)."""
        self.k = 0
        return self.staging

    def interval(self) -> Dict[str, Any]:
        """The metrics of the interval since the last call: returns, staleness, episode statistics."""
        row = {"episode_return": float(np.mean(self.interval_returns)) if self.interval_returns else None,
               "staleness_mean": float(np.mean(self.staleness)) if self.staleness else None,
               "staleness_max": int(np.max(self.staleness)) if self.staleness else None,
               "dropped_samples": self.dropped, "dropped_env_steps": self.dropped_steps,
               "nonfinite_env_resets": self.env_resets, **self.episode_stats.flush()}
        self.interval_returns, self.staleness = [], []
        return row

    def counters(self) -> Dict[str, Any]:
        """What a checkpoint keeps (and `restore` takes back)."""
        return {"dropped": self.dropped, "dropped_steps": self.dropped_steps, "env_resets": self.env_resets,
                "last100": [float(x) for x in self.last100]}

    def restore(self, meta: Mapping[str, Any]) -> None:
        self.dropped, self.dropped_steps = int(meta.get("dropped", 0)), int(meta.get("dropped_steps", 0))
        self.env_resets = int(meta.get("env_resets", 0))
        self.last100.extend(meta.get("last100", []))
