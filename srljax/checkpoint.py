"""Checkpoints: a pytree of arrays written atomically to DIR/checkpoints, the last N kept.

Arrays are brought to host numpy first, so a checkpoint can be read on any device count. A file
is written under a temporary name and renamed into place: a crash mid-write leaves the previous
checkpoints intact, and a write that fails (disk full, file size limit) removes its temp file too.
Each file carries a small header (format version, step, tree layout) so a corrupt or
incompatible checkpoint is reported as such rather than loaded.
"""
from __future__ import annotations

import json
import os
import re
import struct as pystruct
from pathlib import Path
from typing import Any, List, Optional

import jax
import numpy as np
from flax import serialization

from srljax.errors import UserError, WriteError
from srljax.files import written

FORMAT = "srljax-ckpt-1"
_NAME = re.compile(r"^ckpt_(\d{10})\.msgpack$")


class CheckpointError(UserError):
    """A checkpoint that cannot be used: corrupt, truncated, or from an incompatible run."""


class Checkpointer:
    def __init__(self, run_dir: str | os.PathLike, keep: int = 3):
        self.dir = Path(run_dir) / "checkpoints"
        self.keep = int(keep)

    def save(self, step: int, tree: Any, meta: Optional[dict] = None) -> Path:
        """Write the checkpoint of `step`, then drop all but the last `keep`. A write that fails (disk
        full, file size limit) removes its temp file, keeps every earlier checkpoint and raises a
        `WriteError` naming the checkpoint and the cause."""
        host = jax.tree.map(np.asarray, tree)
        body = serialization.to_bytes(host)
        header = json.dumps({"format": FORMAT, "step": int(step), "meta": meta or {},
                             "structure": str(jax.tree.structure(host)), "bytes": len(body)}).encode()
        path = self.dir / f"ckpt_{int(step):010d}.msgpack"

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                f.write(pystruct.pack("<Q", len(header)))
                f.write(header)
                f.write(body)
                f.flush()
                os.fsync(f.fileno())

        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WriteError.of(path, e) from None
        written(path, write)          # PATH.tmp, renamed into place; removed if the write fails
        for old in self.list()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path

    def list(self) -> List[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.iterdir() if _NAME.match(p.name))

    def latest(self) -> Optional[Path]:
        found = self.list()
        return found[-1] if found else None

    @staticmethod
    def read_header(path: Path) -> dict:
        try:
            with open(path, "rb") as f:
                (n,) = pystruct.unpack("<Q", f.read(8))
                if n > 1 << 24:
                    raise ValueError("header too large")
                header = json.loads(f.read(n))
        except (OSError, ValueError, pystruct.error) as e:
            raise CheckpointError(f"checkpoint {path} is corrupt (unreadable header: {e})") from None
        if header.get("format") != FORMAT:
            raise CheckpointError(f"checkpoint {path} has format {header.get('format')!r}, expected {FORMAT}")
        return header

    def restore(self, path: Path) -> tuple[dict, dict]:
        """Read `path`: (state dict of host arrays, header). See `into` to fit it to a structure."""
        header = self.read_header(path)
        with open(path, "rb") as f:
            (n,) = pystruct.unpack("<Q", f.read(8))
            f.seek(8 + n)
            body = f.read()
        if len(body) != header["bytes"]:
            raise CheckpointError(f"checkpoint {path} is truncated ({len(body)} of {header['bytes']} bytes)")
        try:
            return serialization.msgpack_restore(body), header
        except Exception as e:  # msgpack raises several types for damaged bytes
            raise CheckpointError(f"checkpoint {path} is corrupt ({type(e).__name__}: {e})") from None


def into(target: Any, state: dict, what: str = "checkpoint") -> Any:
    """Fit a restored state dict to `target`'s structure, checking every array's shape."""
    try:
        tree = serialization.from_state_dict(target, state)
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{what} does not match this config (different network, env or algorithm: {e})") from None
    for got, want in zip(jax.tree.leaves(tree), jax.tree.leaves(target)):
        if np.shape(got) != np.shape(want):
            raise CheckpointError(f"{what} has arrays of shape {np.shape(got)} where this config has "
                                  f"{np.shape(want)} (different network, env or algorithm)")
    return tree
