"""Hide-and-seek's per-episode statistics as the dataflow reports them, and their plot.

The env lists them in `HideAndSeekVecEnv.episode_stats` (episode key -> metrics-line name);
trainers log their means per interval, and `plot_stage_stats` draws stage_stats.png from a run's
metrics.jsonl.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

TEAM_KEYS = ("hider_return", "seeker_return")
STAGE_KEYS = ("max_box_move_prep", "max_box_move", "max_ramp_move_prep", "max_ramp_move",
              "num_box_lock_prep", "num_box_lock", "num_ramp_lock_prep", "num_ramp_lock", "hider_seen_frac")
EPISODE_STATS = {**{k: k for k in TEAM_KEYS}, **{k: f"stage/{k}" for k in STAGE_KEYS}}


def plot_stage_stats(run_dir: Path) -> Optional[Path]:
    """stage_stats.png from metrics.jsonl: team returns, sight, box and ramp moves and locks."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    import json
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    panels = [("team return", TEAM_KEYS), ("hider seen (fraction of rewarded steps)", ("stage/hider_seen_frac",)),
              ("largest box move (m)", ("stage/max_box_move_prep", "stage/max_box_move")),
              ("largest ramp move (m)", ("stage/max_ramp_move_prep", "stage/max_ramp_move")),
              ("boxes locked", ("stage/num_box_lock_prep", "stage/num_box_lock")),
              ("ramps locked", ("stage/num_ramp_lock_prep", "stage/num_ramp_lock"))]
    if not any(r.get(k) is not None for r in rows for _, keys in panels for k in keys):
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(10, 8), squeeze=False)
    for ax, (title, keys) in zip(axes.ravel(), panels):
        for k in keys:
            pts = [(r["env_steps"], r[k]) for r in rows if r.get(k) is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, label=k.replace("stage/", ""))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = run_dir / "stage_stats.png"
    from srljax.files import written
    try:
        written(out, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))    # a failed write: WriteError, no temp file
    finally:
        plt.close(fig)
    return out
