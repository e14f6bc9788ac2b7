"""Experiment tracking beside metrics.jsonl: TensorBoard event files and, opt-in, Weights & Biases.

`RunLogger` (srljax.runlog) opens one `Trackers` per run directory (trainer 0 or the fused process
only) and hands it every metrics row. Every numeric value of a row becomes a scalar at step
`env_steps` (the same series as metrics.jsonl); the resolved config, flattened to dotted keys, is
logged as hyperparameters (TensorBoard's HPARAMS tab, W&B's run config).

    logging.tensorboard  (default true)   RUN_DIR/events.out.tfevents.*  ->  tensorboard --logdir runs
    logging.wandb        (default false)  wandb.init(project=logging.wandb_project, dir=RUN_DIR)

On --resume the rows after the checkpoint are redone. TensorBoard then gets one new event file
holding the rows kept (those up to the checkpoint) and what follows, and the old files are
deleted once it is written: every step appears once, in any reader. W&B resumes the same run id
(RUN_DIR/wandb_id); W&B itself drops rows whose step it has already seen, so the redone rows keep
their first values there.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from srljax import config as C
from srljax.errors import RunError, UserError

EVENTS_GLOB = "events.out.tfevents.*"


def flat_config(cfg: C.Config) -> Dict[str, Any]:
    """The config as {dotted key: bool, int, float or str}; lists, dicts and None as JSON text."""
    out: Dict[str, Any] = {}

    def walk(prefix: str, d: Dict[str, Any]) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and not k.endswith("kwargs"):
                walk(prefix + k + ".", v)
            else:
                out[prefix + k] = v if isinstance(v, (bool, int, float, str)) else json.dumps(v)

    walk("", C.to_dict(cfg))
    return out


def scalars(row: Dict[str, Any]) -> Dict[str, float]:
    """The numeric values of a metrics row (booleans, strings and None left out)."""
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoard:
    """One event file in the run directory (tensorboardX)."""

    def __init__(self, run_dir: Path, hparams: Dict[str, Any], kept: Optional[List[Dict[str, Any]]]):
        from tensorboardX import SummaryWriter
        from tensorboardX.summary import hparams as hparams_summaries

        old = sorted(run_dir.glob(EVENTS_GLOB)) if kept is not None else []
        # A unique suffix: a resumed run started within the same second gets a file of its own.
        suffix = f".{uuid.uuid4().hex[:8]}"
        self.writer = SummaryWriter(logdir=str(run_dir), flush_secs=30, filename_suffix=suffix)
        if hparams:
            writer = self.writer._get_file_writer()
            for summary in hparams_summaries(hparams, {"episode_return": 0.0}):
                writer.add_summary(summary)
            self.writer.add_text("config", "```\n" + json.dumps(hparams, indent=1) + "\n```")
        for row in kept or []:
            self.log(row)
        self.writer.flush()
        for path in old:                  # the rows kept are in the new file now
            if not path.name.endswith(suffix):
                path.unlink(missing_ok=True)

    def log(self, row: Dict[str, Any]) -> None:
        step = int(row.get("env_steps", 0))
        for key, value in scalars(row).items():
            self.writer.add_scalar(key, value, global_step=step)
        self.writer.flush()

    def close(self, summary: Dict[str, Any]) -> None:
        self.writer.close()


class WandB:
    """A W&B run in RUN_DIR/wandb (offline with WANDB_MODE=offline); needs the wandb package."""

    def __init__(self, run_dir: Path, project: str, hparams: Dict[str, Any], resumed: bool):
        try:
            import wandb
        except ImportError:
            raise UserError("logging.wandb=true needs the wandb package: pip install 'srljax[wandb]'") from None
        id_file = run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if resumed and id_file.is_file() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        try:
            self.run = wandb.init(project=project, name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir),
                                  config=hparams, reinit="create_new")
        except Exception as e:              # no login, no network: say so in one line
            raise RunError(f"wandb.init failed ({type(e).__name__}: {e}); run `wandb login`, or set "
                           "WANDB_MODE=offline, or --set logging.wandb=false") from None

    def log(self, row: Dict[str, Any]) -> None:
        self.run.log(scalars(row), step=int(row.get("env_steps", 0)))

    def close(self, summary: Dict[str, Any]) -> None:
        self.run.summary.update(scalars(summary))
        self.run.finish()


class Trackers:
    """The trackers `cfg.logging` asks for; without a config, TensorBoard alone and no hyperparameters.
    `kept` (a resumed run): the metrics rows up to the checkpoint, which stay."""

    def __init__(self, run_dir: Path, cfg: Optional[C.Config] = None, kept: Optional[List[Dict[str, Any]]] = None):
        logging = cfg.logging if cfg is not None else C.LoggingConfig()
        hparams = flat_config(cfg) if cfg is not None else {}
        self.items: List[Any] = []
        if logging.tensorboard:
            self.items.append(TensorBoard(run_dir, hparams, kept))
        if logging.wandb:
            self.items.append(WandB(run_dir, logging.wandb_project, hparams, resumed=kept is not None))

    def log(self, row: Dict[str, Any]) -> None:
        for t in self.items:
            t.log(row)

    def close(self, summary: Dict[str, Any]) -> None:
        for t in self.items:
            t.close(summary)
        self.items = []
