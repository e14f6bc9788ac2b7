"""Each rank's supervisor: a parent process that reports the rank's death and notices when it is stuck.

Under mpirun every rank forks at start-up: the child runs the rank, the parent only watches it.

- A rank killed by a signal (SIGKILL, the OOM killer) cannot say who it was, and MPICH's mpirun
  names the wrong process (it reports the first rank it cleaned up). The parent sees its child's
  real exit status, prints `srljax: rank R (role, pid P) was killed by signal N (NAME)` and exits
  128+N, which makes mpirun end the job. Ordinary exits pass through unchanged and silently.
- Liveness: the child beats (`beat()`, from its worker loop and every wait) into a page shared
  with the parent. Once armed (`arm(deadline_s)`), a child silent for longer than the deadline
  (stopped, or blocked inside an env's `step`) is killed by its parent, which prints
  `srljax: rank R (role, pid P) is stuck: silent for N s (limit distributed.stuck_after_s=D)` and
  exits 1, so mpirun ends the job. Known long calls (the first XLA compile of an update or a
  policy call) beat with a grace first (`beat(grace=True)`).
- SIGTERM (what batch schedulers send) and SIGHUP reach the child, which raises
  `errors.Interrupted` as Ctrl-C raises KeyboardInterrupt, so trainer 0 saves a checkpoint.
"""
from __future__ import annotations

import mmap
import os
import signal
import struct
import sys
import time

from srljax.errors import Interrupted

SUPERVISOR_FD = "SRLJAX_SUPERVISOR_FD"
_PAGE = None            # child: the shared page [last beat (monotonic s), deadline s, grace s]
_LAST = 0.0
_FMT = "ddd"
ABORT_SIGNAL = signal.SIGUSR2        # supervisor -> stuck child: abort the job


def supervise() -> None:
    """Fork; the child returns and runs the rank, the parent watches it and exits with its status.

    Call before mpi4py or jax is imported (no threads yet); `SRLJAX_SUPERVISE=0` turns it off."""
    global _PAGE
    if (os.environ.get("SRLJAX_SUPERVISE", "1") == "0" or SUPERVISOR_FD in os.environ
            or "mpi4py.MPI" in sys.modules or "jax" in sys.modules or not hasattr(os, "fork")):
        return
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "?"))
    read_end, write_end = os.pipe()
    page = mmap.mmap(-1, struct.calcsize(_FMT))          # anonymous, shared across the fork
    struct.pack_into(_FMT, page, 0, time.monotonic(), 0.0, 0.0)
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        _die_with_parent(parent)
        os.environ[SUPERVISOR_FD] = str(write_end)
        _PAGE = page
        return
    os.close(write_end)
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # a terminal's Ctrl-C reaches the child directly
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(sig, lambda s, _f: os.kill(child, s))
    status = _watch(child, page, rank, read_end)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = "unknown signal"
        _say(f"srljax: rank {rank} ({_role(read_end)}, pid {child}) was killed by signal {sig} ({name}); "
             "mpirun ends the other ranks")
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _watch(child: int, page, rank: str, read_end: int) -> int:
    """Wait for the child's exit status, killing it once it has been silent past its deadline.

    The child writes the page while this reads it, so one read can be torn (seen in CI: a read
    between `arm`'s stores gave the new deadline beside the old, zero, beat: "silent for 38803 s",
    the machine's uptime). A rank is called stuck only when two reads 0.2 s apart both say so."""
    strikes = 0
    while True:
        try:
            pid, status = os.waitpid(child, os.WNOHANG)
        except InterruptedError:
            continue
        if pid:
            return status
        last, deadline, _ = struct.unpack_from(_FMT, page, 0)
        silent = time.monotonic() - last
        strikes = strikes_after(strikes, silent, deadline)
        if strikes >= STRIKES:
            _say(f"srljax: rank {rank} ({_role(read_end)}, pid {child}) is stuck: silent for {silent:.0f} s "
                 f"(limit distributed.stuck_after_s={deadline:g}); ending the job")
            _end_stuck(child)
        time.sleep(0.2)


STRIKES = 2             # reads in a row that must find the rank silent past its deadline


def strikes_after(strikes: int, silent: float, deadline: float) -> int:
    """One more read's verdict: the count of reads in a row that found the rank stuck."""
    return strikes + 1 if deadline > 0 and silent > deadline else 0


def _end_stuck(child: int) -> None:
    """Wake the child and have it abort the MPI job (exit 1 everywhere); if it cannot run its signal
    handler (blocked inside C code), kill it after a few seconds. The line naming the rank was
    written first; the abort waits half a second for mpirun to pass it on (an abort tears down
    mpirun's stdio forwarding, and a line still in its pipe was lost under load: seen in CI)."""
    time.sleep(0.5)
    os.kill(child, signal.SIGCONT)
    os.kill(child, ABORT_SIGNAL)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if os.waitpid(child, os.WNOHANG)[0]:
            os._exit(1)
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    os._exit(1)


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


_said: list = []


def _role(read_end: int) -> str:
    os.set_blocking(read_end, False)
    try:
        _said.extend(os.read(read_end, 1 << 16).decode(errors="replace").strip().splitlines())
    except (BlockingIOError, OSError):
        pass
    return _said[-1] if _said else "role not assigned yet"


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when its supervisor dies (mpirun's clean-up kills the supervisor)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:                                          # it died before prctl
        os._exit(1)


def announce(role: str) -> None:
    """Tell this rank's supervisor its role, for the message it prints if the rank is killed."""
    fd = os.environ.get(SUPERVISOR_FD)
    if fd is not None:
        try:
            os.write(int(fd), (role + "\n").encode())
        except OSError:
            pass


# -- in the rank -----------------------------------------------------------------------------

def arm(deadline_s: float, grace_s: float) -> None:
    """From now on a silence longer than `deadline_s` ends the job (0: never); `grace_s` is the
    silence allowed after `beat(grace=True)`."""
    if _PAGE is not None:                 # the beat first, then the deadline that reads it
        struct.pack_into("d", _PAGE, 0, time.monotonic())
        struct.pack_into("dd", _PAGE, 8, float(deadline_s), float(grace_s))


def disarm() -> None:
    if _PAGE is not None:                 # the deadline off first
        struct.pack_into("dd", _PAGE, 8, 0.0, 0.0)
        struct.pack_into("d", _PAGE, 0, time.monotonic())


def beat(grace: bool = False) -> None:
    """The rank is alive; with `grace`, it is about to start a long call (an XLA compile)."""
    global _LAST
    if _PAGE is None:
        return
    now = time.monotonic()
    if grace:                      # the next plain beat, after the long call, ends the grace
        grace_s = struct.unpack_from(_FMT, _PAGE, 0)[2]
        struct.pack_into("d", _PAGE, 0, now + grace_s)
        _LAST = 0.0
    elif now - _LAST > 0.1:        # a few writes a second are plenty
        struct.pack_into("d", _PAGE, 0, now)
        _LAST = now


_PENDING: list = []          # signals noted, not yet raised
_SEEN = [False]              # a signal came before: a further Ctrl-C raises at once


def terminate_as_interrupt(deferred: bool = False) -> None:
    """SIGTERM and SIGHUP raise `Interrupted` as Ctrl-C raises KeyboardInterrupt. `deferred`
    (both modes): Ctrl-C, SIGTERM and SIGHUP are only noted and raised at the next safe point
    (`check_interrupt`: between jitted calls, in every worker's poll and every wait): raising
    inside jax's dispatch can leave it locked and the checkpoint save that follows hangs; a second
    Ctrl-C raises at once. Under a supervisor, its abort signal ends the MPI job with exit code 1."""
    def raise_now(signum, _frame):
        raise Interrupted(signum)

    def note(signum, _frame):
        if signum == signal.SIGINT and _SEEN[0]:
            raise KeyboardInterrupt
        _SEEN[0] = True
        _PENDING.append(signum)

    def abort(_signum, _frame):
        mpi = sys.modules.get("mpi4py.MPI")
        if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
            mpi.COMM_WORLD.Abort(1)
        os._exit(1)

    for sig in ((signal.SIGINT,) if deferred else ()) + (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, note if deferred else raise_now)
    if _PAGE is not None:
        signal.signal(ABORT_SIGNAL, abort)


def check_interrupt() -> None:
    """Raise the interrupt a signal asked for (see `terminate_as_interrupt`), once."""
    if _PENDING:
        signum = _PENDING[0]
        _PENDING.clear()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signum)
