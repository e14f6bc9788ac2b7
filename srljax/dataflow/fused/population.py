"""Several runs in one program (`seeds`): a population of members vmapped inside each device's program.

With `cfg.seeds = N > 1` a fused trainer's per-device functions run under `jax.vmap` over a leading
member axis (`fused.loop.sharded(..., members=N)`): every state leaf is [devices, N, ...], member i
is initialised from seed `cfg.seed + i` and computes what a single run of that seed computes
(collectives over devices act member by member). Members advance in lockstep, one `chunk` call for
all. On the host, each member's interval metrics are worked out as a single run's are, and a log
row holds their mean over members (what the console shows) with `episode_return_members`, each
member's own return; the summary adds the aggregate over members (`aggregate`): mean, IQM and 95%
stratified-bootstrap confidence intervals, as rliable reports them (`srljax.stats`).
"""
from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np


def seeds_for(seed: int, devices: int, members: int) -> np.ndarray:
    """The `init` argument: [devices] copies of `seed`, or [devices, N] of seed .. seed + N - 1."""
    if not members:
        return np.full((devices,), seed, np.uint32)
    return np.broadcast_to(np.arange(seed, seed + members, dtype=np.uint32), (devices, members)).copy()


def member_rows(acc: Dict[str, np.ndarray], done, members: int, interval: Callable, seed: int = 0) -> Dict:
    """The host row of a chunk: `interval(acc, done)` of a single run, or for a population each
    member's (acc leaves [N]; `seed`: member 0's) combined by `combine`."""
    if not members:
        return interval(acc, done)
    done = np.broadcast_to(np.asarray(done), (members,))
    rows = [{"member": i, "seed": seed + i, **interval({k: v[i] for k, v in acc.items()}, done[i])}
            for i in range(members)]
    return combine(rows)


def combine(rows: List[Dict]) -> Dict:
    """One row for a population: numbers averaged over the members that have them (counts such as
    `episodes` and `updates` summed or taken from the slowest), each member's return
    (`episode_return_members`) and each member's whole row (`members`: with its index and seed)."""
    out: Dict = {}
    for k in rows[0]:
        if k in ("member", "seed"):
            continue
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
        if k in ("episodes", "gradient_steps", "skipped_steps"):
            out[k] = int(sum(vals))
        elif k == "updates":
            out[k] = int(min(vals))
        else:
            out[k] = float(np.mean(vals)) if vals else None
    out["episode_return_members"] = [r.get("episode_return") for r in rows]
    out["members"] = rows
    return out
