"""A distributed-mode process: its set-up (thread pools, supervisor, signals) and its failure
handling (any exception, Ctrl-C or SIGTERM ends the whole MPI job promptly, naming this rank)."""
from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Callable, TypeVar

from srljax.dataflow.launch import supervisor
from srljax.errors import UserError, WriteError, interrupt_code
from srljax.process import enable_compile_cache, single_threaded, under_mpirun

T = TypeVar("T")

def configure_process() -> None:
    """A distributed-mode process: single-threaded pools (several ranks share the cores), and under
    mpirun a supervisor and the abort hook. Call before jax or mpi4py is imported."""
    single_threaded()
    if under_mpirun():
        supervisor.supervise()
        install_abort_hook()
        # Deferred: raised at the next safe point (a worker's poll, a wait), never inside jax's
        # dispatch, where it could leave jax locked and trainer 0's checkpoint save hanging
        # (seen in CI: trainer 0 neither saved nor ended after SIGTERM).
        supervisor.terminate_as_interrupt(deferred=True)
    enable_compile_cache()


def install_abort_hook() -> None:
    """Under mpirun, an exception nobody caught ends the whole job (MPI_Abort), not just this rank.

    Without it, MPICH's mpirun waits for ever on the ranks still blocked on the one that died.
    """
    if getattr(sys.excepthook, "_srljax", False):
        return
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        mpi = sys.modules.get("mpi4py.MPI")
        if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
            report_failure(mpi.COMM_WORLD.rank, "uncaught", exc)
            mpi.COMM_WORLD.Abort(1)
        previous(exc_type, exc, tb)

    hook._srljax = True
    sys.excepthook = hook



def report_failure(rank: int, role: str, exc: BaseException) -> str:
    """The one line that names the failed rank, on stderr before and after the traceback.

    It comes first too because MPI_Abort may tear the job down before mpirun has forwarded the
    rest of a long traceback; the short pause gives its forwarding a moment.
    """
    kind = "" if isinstance(exc, WriteError) else f"{type(exc).__name__}: "    # "could not write PATH: cause"
    line = f"srljax: rank {rank} ({role}) failed: {kind}{exc}"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    if not isinstance(exc, (UserError, WriteError)):         # those say all in their one line
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.write(line + "\n")
    sys.stderr.flush()
    time.sleep(ABORT_FLUSH_S)
    return line


INTERRUPT_GRACE_S = 8.0
"""After Ctrl-C, how long ranks other than 0 wait before ending the job (rank 0 ends it sooner)."""


ABORT_FLUSH_S = 0.5
"""How long a rank waits after its last line before MPI_Abort, so that mpirun passes the line on."""


PEER_LOSS_GRACE_S = 5.0
"""After an MPI error (a peer may have died), how long a rank waits before reporting itself failed."""


def guarded(rank: int, role: str, fn: Callable[[], T]) -> T:
    """Run one rank's work; any exception ends the whole MPI job promptly (MPI_Abort).

    A rank blocked waiting on a dead peer never hangs: MPI_Abort makes mpirun kill every rank,
    and every wait in srljax is a test-and-sleep loop, so nothing sits in a blocking receive.
    """
    try:
        return fn()
    except BaseException as exc:  # noqa: BLE001 - any failure must take the job down
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        from mpi4py import MPI
        if isinstance(exc, KeyboardInterrupt):      # Ctrl-C (or SIGTERM) reaches every rank: not a failure
            how = f"terminated ({exc.name})" if hasattr(exc, "name") else "interrupted"
            sys.stderr.write(f"srljax: rank {rank} ({role}) {how}\n")
            sys.stderr.flush()
            # Rank 0 (trainer 0) has saved its checkpoint and ends the job; the others give it time to.
            # Rank 0 waits too, a little: MPI_Abort tears down mpirun's stdio forwarding, and the lines
            # just written (checkpoint saved, terminated) were lost from a pipe under load (seen in CI).
            time.sleep(INTERRUPT_GRACE_S if rank != 0 else ABORT_FLUSH_S)
            MPI.COMM_WORLD.Abort(interrupt_code(exc))
            os._exit(interrupt_code(exc))           # MPICH's Abort may return to the caller
        if isinstance(exc, MPI.Exception):
            # A peer killed mid-transfer fails this rank's MPI call (MPICH: "process_vm_readv failed (errno
            # 3)"): its supervisor names it and mpirun ends the job within a second. Wait so that a
            # healthy rank is not reported as failed first (measured: rank 0 named before a killed actor).
            time.sleep(PEER_LOSS_GRACE_S)
        report_failure(rank, role, exc)
        code = 2 if isinstance(exc, UserError) else 1
        MPI.COMM_WORLD.Abort(code)
        os._exit(code)     # MPICH's Abort may return: the exception must not reach cli, which would say it again


