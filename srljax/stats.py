"""Statistics over runs, as rliable reports them: the interquartile mean and percentile-bootstrap
confidence intervals (one task: rliable's stratified bootstrap resamples the runs), and the
aggregate a population's summary holds (`dataflow.fused.population`). numpy only."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import numpy as np

BOOTSTRAP_REPS = 2000
"""Bootstrap resamples for the confidence intervals (rliable's default is 50,000; 2,000 keep a
summary's cost to milliseconds; `tests/test_stats.py` compares the two)."""


def iqm(x, axis: int = -1):
    """The interquartile mean: the mean of the middle 50% of the values (rliable's `aggregate_iqm`,
    scipy's `trim_mean(x, 0.25)`: a quarter cut from each end, by whole values), along `axis`."""
    x = np.sort(np.asarray(x, np.float64), axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def bootstrap_ci(x: Sequence[float], stat: Callable = np.mean, reps: int = BOOTSTRAP_REPS, size: float = 0.95,
                 seed: int = 0) -> tuple:
    """The percentile bootstrap interval of `stat` (called with `axis=-1`) over runs: rliable's
    stratified bootstrap with one task, runs resampled with replacement."""
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    draws = stat(x[rng.integers(0, len(x), (reps, len(x)))], axis=-1)
    lo, hi = np.percentile(draws, [100 * (1 - size) / 2, 100 * (1 + size) / 2])
    return float(lo), float(hi)


def aggregate(values: Sequence[Optional[float]], prefix: str = "episode_return") -> Dict:
    """Mean, IQM and their 95% bootstrap intervals over the members' values (None: a member with no
    finished episode yet, left out), the best member and the count."""
    ok = [(i, float(v)) for i, v in enumerate(values) if v is not None and np.isfinite(v)]
    out: Dict = {f"{prefix}_members": [None if v is None else float(v) for v in values]}
    if not ok:
        return out
    x = np.array([v for _, v in ok])
    out.update({f"{prefix}_mean": float(x.mean()), f"{prefix}_iqm": float(iqm(x)),
                f"{prefix}_mean_ci95": list(bootstrap_ci(x, np.mean)),
                f"{prefix}_iqm_ci95": list(bootstrap_ci(x, iqm)),
                "best_member": ok[int(np.argmax(x))][0]})
    return out
