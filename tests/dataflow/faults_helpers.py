"""Start a distributed run under mpirun, wait for its checkpoints, kill one rank's process."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT, subprocess_env

TRAIN = [sys.executable, str(ROOT / "scripts" / "train.py")]
FAST = ["--set", "checkpoint_every_logs=1", "--set", "distributed.log_interval_s=0.3"]


class MpiRun:
    """`mpirun -n N python scripts/train.py ARGS` in its own session, stdout/stderr to files."""

    def __init__(self, n: int, args, run_dir: Path, log: Path):
        self.run_dir, self.log = Path(run_dir), Path(log)
        self.err = open(self.log, "w")
        cmd = ["mpirun", "-n", str(n)] + TRAIN + [str(a) for a in args] + ["--run-dir", str(run_dir)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err, cwd=ROOT,
                                     env=subprocess_env(), start_new_session=True)

    def wait_until(self, ready, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = ready()
            if found:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"mpirun ended (rc {self.proc.returncode}) before {what}:\n{self.stderr()[-3000:]}")
            time.sleep(0.05)
        self.kill_all()
        raise AssertionError(f"no {what} after {timeout} s:\n{self.stderr()[-3000:]}")

    def ranks(self):
        path = self.run_dir / "ranks.json"
        return json.loads(path.read_text())["ranks"] if path.is_file() else None

    def checkpoints(self):
        ckpts = sorted((self.run_dir / "checkpoints").glob("ckpt_*.msgpack"))
        return ckpts or None

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()
            raise AssertionError(f"mpirun still running {timeout} s later:\n{self.stderr()[-3000:]}")
        finally:
            self.err.close()

    def kill_all(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stderr(self) -> str:
        if not self.err.closed:
            self.err.flush()
        return self.log.read_text()


def kill_rank(run: MpiRun, rank: int, timeout: float = 10.0):
    """SIGKILL one rank's worker process; (its role, seconds until mpirun exited, return code)."""
    entry = next(r for r in run.ranks() if r["rank"] == rank)
    t0 = time.monotonic()
    os.kill(entry["pid"], signal.SIGKILL)
    rc = run.wait_exit(timeout + 20)
    return entry["role"], entry["pid"], time.monotonic() - t0, rc
