"""Rank layout, process set-up and failure handling for distributed mode.

Ranks are laid out in this order: trainers, policy workers, buffers, then actors with whatever is
left. Rank 0 is trainer 0, which logs. Every rank computes the same layout from the config, so a
layout that does not fit fails on every rank at once (rank 0 prints the one-line reason).
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
import traceback
from typing import Callable, List, Optional, TypeVar

from srljax.config import DistributedConfig
from srljax.dataflow import supervisor
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


@dataclasses.dataclass(frozen=True)
class Role:
    """What one rank does, and whom it talks to."""

    kind: str            # "trainer" | "policy" | "buffer" | "actor"
    index: int           # index among ranks of the same kind
    rank: int

    def __str__(self) -> str:
        return f"{self.kind} {self.index}"


@dataclasses.dataclass(frozen=True)
class Layout:
    """Which rank has which role, and the routes between them."""

    trainers: List[int]
    policies: List[int]
    buffers: List[int]
    actors: List[int]

    @property
    def size(self) -> int:
        return len(self.trainers) + len(self.policies) + len(self.buffers) + len(self.actors)

    def role(self, rank: int) -> Role:
        for kind, ranks in (("trainer", self.trainers), ("policy", self.policies),
                            ("buffer", self.buffers), ("actor", self.actors)):
            if rank in ranks:
                return Role(kind, ranks.index(rank), rank)
        raise ValueError(f"rank {rank} is outside a layout of {self.size} ranks")

    def policy_of(self, actor_rank: int) -> Optional[int]:
        """The policy worker serving an actor (None with inline inference)."""
        if not self.policies:
            return None
        return self.policies[self.actors.index(actor_rank) % len(self.policies)]

    def sink_of(self, rank: int) -> int:
        """Where an actor (or buffer) posts its samples: a buffer, or a trainer."""
        if rank in self.actors:
            i = self.actors.index(rank)
            return self.buffers[i % len(self.buffers)] if self.buffers else self.trainers[i % len(self.trainers)]
        if rank in self.buffers:
            return self.trainers[self.buffers.index(rank) % len(self.trainers)]
        raise ValueError(f"rank {rank} posts no samples")

    def sources_of(self, rank: int) -> List[int]:
        """Ranks that post samples to this trainer or buffer."""
        posters = self.actors if (rank in self.buffers or not self.buffers) else self.buffers
        return [r for r in posters if self.sink_of(r) == rank]

    def clients_of(self, policy_rank: int) -> List[int]:
        return [a for a in self.actors if self.policy_of(a) == policy_rank]

    def param_readers(self) -> List[int]:
        """Ranks that read the parameter stream: policy workers, or every actor when inline."""
        return list(self.policies) if self.policies else list(self.actors)


def make_layout(dcfg: DistributedConfig, world_size: int) -> Layout:
    """The rank layout for `world_size` ranks; a UserError when the config does not fit."""
    dcfg.validate()
    if dcfg.inline_inference and dcfg.policy_workers:
        raise UserError(f"distributed.inline_inference is set but distributed.policy_workers="
                        f"{dcfg.policy_workers}; set policy_workers=0 (actors run the policy themselves)")
    fixed = dcfg.trainers + dcfg.policy_workers + dcfg.buffers
    n_actors = world_size - fixed
    need = max(1, dcfg.policy_workers, dcfg.buffers, dcfg.trainers if not dcfg.buffers else 1)
    if n_actors < need:
        raise UserError(
            f"rank layout does not fit -n {world_size}: {dcfg.trainers} trainer(s) + {dcfg.policy_workers} "
            f"policy worker(s) + {dcfg.buffers} buffer(s) leave {max(n_actors, 0)} actor rank(s), "
            f"at least {need} needed; run with mpirun -n {fixed + need} or more, or change distributed.*")
    if dcfg.buffers and dcfg.buffers < dcfg.trainers:
        raise UserError(f"distributed.buffers={dcfg.buffers} is fewer than distributed.trainers="
                        f"{dcfg.trainers}: every trainer needs a buffer feeding it")
    ranks = list(range(world_size))
    t, p, b = dcfg.trainers, dcfg.policy_workers, dcfg.buffers
    return Layout(trainers=ranks[:t], policies=ranks[t:t + p], buffers=ranks[t + p:t + p + b],
                  actors=ranks[t + p + b:])


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


class Backoff:
    """Wait politely: spin briefly (`spin` seconds of re-tests, yielding the core), then sleep a
    little longer each idle turn. MPICH's blocking calls spin forever; ranks here share cores."""

    def __init__(self, spin: float = 2e-4, first: float = 2e-5, most: float = 5e-4):
        self.spin, self.first, self.most = spin, first, most
        self.delay = 0.0
        self.since: Optional[float] = None

    def idle(self) -> None:
        now = time.perf_counter()
        if self.since is None:
            self.since = now
        if now - self.since < self.spin:
            os.sched_yield()
            return
        self.delay = self.first if self.delay == 0.0 else min(self.delay * 2, self.most)
        time.sleep(self.delay)

    def busy(self) -> None:
        self.delay, self.since = 0.0, None


def wait_for(done: Callable[[], bool], timeout: Optional[float] = None, what: str = "a peer") -> None:
    """Poll `done()` with backoff; a TimeoutError after `timeout` seconds."""
    backoff = Backoff()
    deadline = None if timeout is None else time.monotonic() + timeout
    while not done():
        supervisor.beat()
        supervisor.check_interrupt()
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")
        backoff.idle()
