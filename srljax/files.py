"""Writing a run's files so that a write that fails (disk full, file size limit) leaves nothing half done.

Whole files (summary.json, config.json, plots) go to PATH.tmp and are renamed into place: on an
OSError the temp file is removed and `path` keeps its old contents. Appended rows (metrics.jsonl,
TensorBoard events) are written whole or not at all: a failed append cuts the file back to where it
ended. Either way a `WriteError` names the file and the cause: one line, exit code 1.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from srljax.errors import WriteError


def written(path: Path, write: Callable[[Path], object]) -> None:
    """`write(tmp)` a file at PATH.tmp, then rename it to `path`."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise WriteError.of(path, e) from None


def write_text(path: Path, text: str) -> None:
    written(path, lambda tmp: tmp.write_text(text))


def open_appending(path: Path):
    """`path` opened for `append_whole` (unbuffered: nothing is left in a buffer after a failed write)."""
    try:
        return open(path, "ab", buffering=0)
    except OSError as e:
        raise WriteError.of(path, e) from None


def append_whole(f, data: bytes, path: Path) -> None:
    """Append `data` to `f` (from `open_appending`) whole, or cut the file back to where it ended and
    raise a `WriteError` naming `path`: no half line or record is left for a later --resume to read."""
    start = f.seek(0, os.SEEK_END)
    try:
        while data:
            data = data[f.write(data):]
    except OSError as e:
        try:
            f.truncate(start)
        except OSError:
            pass
        raise WriteError.of(path, e) from None
