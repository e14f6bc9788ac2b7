#!/usr/bin/env python
"""Train an agent: `python scripts/train.py --config NAME [--set KEY=VALUE ...] [--run-dir DIR]`.

Fused mode (JAX envs) runs in this process; distributed mode (CPU envs) runs under
`mpirun -n N python scripts/train.py ...` or, without mpirun, in one process with in-process
streams. The same as `python -m srljax`; see `srljax.cli`.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srljax.cli import cli  # noqa: E402

if __name__ == "__main__":
    sys.exit(cli())
