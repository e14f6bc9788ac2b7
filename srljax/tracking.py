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
import struct as pystruct
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from srljax import config as C
from srljax.errors import RunError, UserError
from srljax.files import append_whole, open_appending

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
    """One event file in the run directory, in TensorBoard's format (tensorboardX's summaries)."""

    def __init__(self, run_dir: Path, hparams: Dict[str, Any], kept: Optional[List[Dict[str, Any]]]):
        from tensorboardX.summary import hparams as hparams_summaries
        from tensorboardX.summary import text

        old = []
        if kept is not None:
            old = sorted(run_dir.glob(EVENTS_GLOB)) + sorted(run_dir.glob(f"members/*/{EVENTS_GLOB}"))
        # A unique suffix: a resumed run started within the same second gets a file of its own.
        self.suffix = f".{uuid.uuid4().hex[:8]}"
        self.file = EventFile(run_dir, suffix=self.suffix)
        self.run_dir, self.member_files = run_dir, {}
        if hparams:
            for summary in hparams_summaries(hparams, {"episode_return": 0.0}):
                self.file.add([summary])
            self.file.add([text("config", "```\n" + json.dumps(hparams, indent=1) + "\n```")])
        for row in kept or []:
            self.log(row)
        new = {self.file.path} | {f.path for f in self.member_files.values()}
        for path in old:                  # the rows kept are in the new files now
            if path not in new:
                path.unlink(missing_ok=True)

    def log(self, row: Dict[str, Any]) -> None:
        from tensorboardX.summary import scalar
        step = int(row.get("env_steps", 0))
        self.file.add([scalar(key, value) for key, value in scalars(row).items()], step=step)
        for member in row.get("members") or ():     # a population: one TensorBoard run per member
            i = int(member["member"])
            if i not in self.member_files:
                (self.run_dir / "members" / str(i)).mkdir(parents=True, exist_ok=True)
                self.member_files[i] = EventFile(self.run_dir / "members" / str(i), suffix=self.suffix)
            self.member_files[i].add([scalar(k, v) for k, v in scalars(member).items() if k not in ("member", "seed")],
                                     step=step)

    def close(self, summary: Dict[str, Any]) -> None:
        self.file.close()
        for f in self.member_files.values():
            f.close()


class EventFile:
    """A TensorBoard event file written in the caller's thread, each call's events whole or not at all.

    (tensorboardX's SummaryWriter writes from a thread of its own: past a file size limit that
    thread died with a traceback, the caller's flush raised a bare OSError and its exit handler a
    third traceback.) A write that fails cuts the file back to its last whole event and raises a
    `WriteError` naming the file."""

    def __init__(self, run_dir: Path, suffix: str = ""):
        import socket
        import time

        from tensorboardX.proto import event_pb2
        from tensorboardX.record_writer import masked_crc32c
        self._pb, self._crc, self._time = event_pb2, masked_crc32c, time.time
        self.path = run_dir / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}{suffix}"
        self._file = open_appending(self.path)
        self._write([event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")])

    def add(self, summaries: List[Any], step: Optional[int] = None) -> None:
        """One event per summary (at `step`, when given), in one write."""
        events = [self._pb.Event(wall_time=self._time(), summary=s) for s in summaries]
        if step is not None:
            for event in events:
                event.step = step
        self._write(events)

    def _write(self, events) -> None:
        records = []
        for event in events:
            data = event.SerializeToString()
            header = pystruct.pack("<Q", len(data))
            records += [header, pystruct.pack("<I", self._crc(header)), data, pystruct.pack("<I", self._crc(data))]
        append_whole(self._file, b"".join(records), self.path)

    def close(self) -> None:
        self._file.close()


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
