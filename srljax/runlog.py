"""The run directory: config.json, metrics.jsonl, summary.json, learning_curve.png, progress.

One `RunLogger` per run, owned by the process that writes (rank 0 in distributed mode). On a
terminal it shows a progress bar; otherwise it prints one plain line per log interval. It also
hands every row to the trackers of `srljax.tracking` (TensorBoard event files, W&B). A write
that fails (disk full, file size limit) leaves no half row and no temp file (`srljax.files`).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

from srljax.errors import UserError
from srljax.files import append_whole, open_appending, write_text, written


def check_run_dir(run_dir: str | os.PathLike, overwrite: bool = False, resume: bool = False) -> Path:
    """Refuse a run directory that cannot be used, touching nothing.

    A new run needs an empty or missing directory (or `overwrite`); `resume` needs a directory
    with its config.json."""
    path = Path(run_dir)
    if resume:
        if not (path / "config.json").is_file():
            raise UserError(f"--resume: {path} holds no run (no config.json)")
        return path
    if path.exists() and not path.is_dir():
        raise UserError(f"run directory {path} is a file, not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UserError(f"run directory {path} already exists and is not empty; "
                        "pass --overwrite to replace it or --resume to continue it")
    return path


def create_run_dir(path: Path, overwrite: bool = False) -> Path:
    """Make a checked new run directory (emptying it first with `overwrite`); OSErrors are bad input."""
    try:
        if overwrite and path.is_dir() and any(path.iterdir()):
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".srljax-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"run directory {path} cannot be written: {e.strerror or e}") from None
    return path


def prepare_run_dir(run_dir: str | os.PathLike, overwrite: bool = False, resume: bool = False) -> Path:
    """`check_run_dir`, then create it (a new run)."""
    path = check_run_dir(run_dir, overwrite=overwrite, resume=resume)
    return path if resume else create_run_dir(path, overwrite=overwrite)


def _jsonable(v: Any) -> Any:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    if isinstance(v, (bool, int)) and not isinstance(v, float):
        return v
    return f if math.isfinite(f) else None


class RunLogger:
    """Writes metrics lines and the summary; shows progress towards `total_env_steps`.

    With a run directory, the rows also go to the trackers `config.logging` names (TensorBoard by
    default; without `config`, TensorBoard alone, no hyperparameters)."""

    def __init__(self, run_dir: Optional[str | os.PathLike], total_env_steps: int, quiet: bool = False,
                 stream=None, resume_at: Optional[int] = None, config=None):
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.total = int(total_env_steps)
        self.history: List[Dict[str, Any]] = []
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self._bar = None
        self._file = self._trackers = None
        if self.run_dir is not None:
            metrics = self.run_dir / "metrics.jsonl"
            if resume_at is not None:
                # Rows logged after the checkpoint we resume from are redone by the resumed run.
                self.history = [r for r in read_metrics(self.run_dir) if r.get("env_steps", 0) <= resume_at]
                write_text(metrics, "".join(json.dumps(r) + "\n" for r in self.history))
            self._file = open_appending(metrics)        # a row is written whole or not at all
            from srljax.tracking import Trackers
            self._trackers = Trackers(self.run_dir, config, kept=self.history if resume_at is not None else None)
        if not quiet and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm
            self._bar = tqdm(total=self.total, unit="step", unit_scale=True, dynamic_ncols=True, file=self.stream)
            if self.history:
                self._bar.update(self.history[-1].get("env_steps", 0))

    def log(self, metrics: Dict[str, Any]) -> None:
        row = {k: _jsonable(v) for k, v in metrics.items()}
        self.history.append(row)
        if self._file is not None:
            append_whole(self._file, (json.dumps(row) + "\n").encode(), self.run_dir / "metrics.jsonl")
        if self._trackers is not None:
            self._trackers.log(row)
        ret = row.get("episode_return")
        ret_s = "n/a" if ret is None else f"{ret:.1f}"
        if self._bar is not None:
            if row["env_steps"] > self._bar.total:   # the last update may overshoot the budget a little
                self._bar.total = row["env_steps"]
            self._bar.update(max(0, row["env_steps"] - self._bar.n))
            self._bar.set_postfix_str(f"return {ret_s}  {row.get('steps_per_s', 0):,.0f} steps/s")
        elif not self.quiet:
            print(f"env_steps {row['env_steps']:>10,}  wall {row.get('wall_s', 0):7.1f}s  "
                  f"steps/s {row.get('steps_per_s', 0):>10,.0f}  return {ret_s}", file=self.stream, flush=True)

    def finish(self, summary: Dict[str, Any]) -> Dict[str, Any]:
        summary = {k: _jsonable(v) for k, v in summary.items()}
        if self._bar is not None:
            self._bar.close()
        if self._file is not None:
            self._file.close()
        if self._trackers is not None:
            self._trackers.close(summary)
        if self.run_dir is not None:
            write_json(self.run_dir / "summary.json", summary)
            plot_learning_curve(self.history, self.run_dir / "learning_curve.png")
        return summary


def write_json(path: Path, obj: Dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a file, and a write that fails (disk full) leaves
    the old file and no temp file (`files.written`: a WriteError naming `path`)."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json_if_exists(path: Path) -> Optional[Dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e})") from None


def read_metrics(run_dir: Path) -> List[Dict[str, Any]]:
    """The rows of a run's metrics.jsonl. A torn last line (the row being written when the run
    died) is dropped; damage anywhere else is a UserError naming the file and line."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise UserError(f"{path} line {i + 1} is not a JSON object; the run's metrics are damaged") from None
        if not isinstance(row, dict):
            raise UserError(f"{path} line {i + 1} is not a JSON object; the run's metrics are damaged")
        rows.append(row)
    return rows


def _band(ax, history: List[Dict[str, Any]], key: str) -> bool:
    """A population's rows (their `members`): each member's curve, thin, and per setting of a sweep
    (one group without) the mean over its seeds with the 95% bootstrap interval of that mean as a
    band; whether there was a population."""
    from srljax.stats import bootstrap_ci
    rows = [h for h in history if isinstance(h.get("members"), list) and h["members"]]
    if not rows:
        return False
    swept = [k for k in rows[0]["members"][0] if k not in ("member", "seed") and not isinstance(
        rows[0]["members"][0][k], (list, dict)) and k not in rows[0]]
    groups: Dict[tuple, List[int]] = {}
    for i, m in enumerate(rows[0]["members"]):
        groups.setdefault(tuple(m.get(k) for k in swept), []).append(i)
    for setting, idx in groups.items():
        label = ", ".join(f"{k}={v:g}" for k, v in zip(swept, setting)) or "mean over seeds"
        xs, means, lows, highs = [], [], [], []
        for h in rows:
            vals = [h["members"][i].get(key) for i in idx if i < len(h["members"])]
            vals = [v for v in vals if v is not None]
            if vals:
                lo, hi = bootstrap_ci(vals)
                xs.append(h["env_steps"])
                means.append(sum(vals) / len(vals))
                lows.append(lo)
                highs.append(hi)
        line = ax.plot(xs, means, label=label)[0]
        ax.fill_between(xs, lows, highs, alpha=0.2, color=line.get_color())
        if len(groups) == 1:
            for i in idx:
                ax.plot([h["env_steps"] for h in rows], [h["members"][i].get(key) if i < len(h["members"]) and
                                                         h["members"][i].get(key) is not None else float("nan")
                                                         for h in rows], lw=0.5, alpha=0.4, color=line.get_color())
    ax.legend(fontsize=7, title="band: 95% CI of the mean", title_fontsize=7)
    return True


def plot_learning_curve(history: List[Dict[str, Any]], out: Path, extra: tuple = ()) -> None:
    """Episode return against env steps (and any `extra` metric keys in panels below); a
    population's with each member's curve and a band (`_band`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("episode_return",) + tuple(extra)
    fig, axes = plt.subplots(len(keys), 1, figsize=(6, 3 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        pts = [(h["env_steps"], h[key]) for h in history if h.get(key) is not None]
        if pts:
            if not _band(ax, history, key):
                ax.plot(*zip(*pts))
        ax.set_xlabel("env steps")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        written(Path(out), lambda tmp: fig.savefig(tmp, dpi=80, format=Path(out).suffix.lstrip(".") or "png"))
    finally:
        plt.close(fig)
