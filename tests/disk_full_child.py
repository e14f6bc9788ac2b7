"""`scripts/train.py` whose file size limit drops partway through the run (tests/test_disk_full.py).

    SRLJAX_TEST_LIMIT_AFTER_LOG=N python tests/disk_full_child.py --config cartpole ...
    mpirun -n 4 python tests/disk_full_child.py --config gym_cartpole ...     (rank 0 logs)

Once the Nth metrics row of this process is written, the soft RLIMIT_FSIZE drops to
SRLJAX_TEST_LIMIT_BYTES (default 4096): the next write past that size, the checkpoint that follows
the row, fails for real with EFBIG ([Errno 27] File too large), after N - 1 good checkpoints.
SRLJAX_TEST_LIMIT_BEFORE_LOG=N drops it instead just before row N, to the size metrics.jsonl has
then plus SRLJAX_TEST_LIMIT_BYTES: that row's write stops partway. SIGXFSZ is ignored (Python does
that at start-up too), so the write returns EFBIG rather than the signal killing the process.
SRLJAX_TEST_MARK=FILE: the time the limit dropped is written there. Nothing here imports jax:
under mpirun the rank's supervisor forks before jax starts.
"""
import os
import resource
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srljax import runlog  # noqa: E402


def _limit(nbytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def _mark() -> None:
    """The time the limit dropped, in the file SRLJAX_TEST_MARK names (if any)."""
    if os.environ.get("SRLJAX_TEST_MARK"):
        Path(os.environ["SRLJAX_TEST_MARK"]).write_text(repr(time.time()))


def install() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    after = int(os.environ.get("SRLJAX_TEST_LIMIT_AFTER_LOG", "0"))
    before = int(os.environ.get("SRLJAX_TEST_LIMIT_BEFORE_LOG", "0"))
    nbytes = int(os.environ.get("SRLJAX_TEST_LIMIT_BYTES", "4096"))
    original = runlog.RunLogger.log
    rows = [0]

    def log(self, metrics):
        rows[0] += 1
        if rows[0] == before:
            _mark()
            _limit((self.run_dir / "metrics.jsonl").stat().st_size + nbytes)
        original(self, metrics)
        if rows[0] == after:
            _mark()
            _limit(nbytes)

    runlog.RunLogger.log = log


if __name__ == "__main__":
    install()
    from srljax.cli import cli
    sys.exit(cli())
