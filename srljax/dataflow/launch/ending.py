"""The end of a distributed run under MPI: every rank meets rank 0, and only a rank at fault is named.

Trainer 0 (rank 0) decides the end and sends STOP. From then on:

- every other rank, once it has heard STOP (other trainers: from the shared stop decision), tells
  rank 0 every second that it is alive while it finishes its part, then that it has arrived, and
  waits for rank 0's release;
- rank 0 is the judge, because it alone sees every rank: a rank that has not arrived and has been
  silent for longer than `silent_s` (that is `distributed.stuck_after_s` + 10 s, at least 30 s:
  where liveness is armed, the silent rank's own supervisor names it first) is named as stuck; ranks
  that keep saying they are alive but have not arrived `arrive_s` after the end began are named as
  not reaching the end. Ranks that wait for a silent peer keep telling rank 0 they are alive, so
  they are never named in its place. Rank 0 writes the one line and ends the job (exit 1).
- the other ranks give up only `patience_s` after they heard STOP, later than rank 0 would have
  judged: a rank 0 that neither released nor judged by then is the one at fault, and is named.

A rank stuck before the end (an env's `step` that never returns) is caught by its supervisor
`stuck_after_s` after it went silent; everything at the end waits longer than that, so the end
of the run never blames a healthy rank for it.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
from mpi4py import MPI

from srljax.dataflow.launch import supervisor
from srljax.dataflow.launch.waiting import wait_for

TAG_ARRIVE, TAG_RELEASE = 16, 17
ALIVE, ARRIVED = 1, 2
PING_S = 1.0               # how often a finishing rank tells rank 0 it is alive


def limits(stuck_after_s: float):
    """(silent_s, arrive_s, patience_s) for a `distributed.stuck_after_s` (0: liveness off)."""
    silent = max(30.0, float(stuck_after_s) + 10.0)
    return silent, silent + 30.0, silent + 60.0


def end_job(line: str) -> None:
    """Write the line naming the rank(s) at fault and end the whole job with exit code 1."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    time.sleep(0.5)             # mpirun forwards the line before the abort tears its stdio down
    MPI.COMM_WORLD.Abort(1)
    os._exit(1)


class EndOfRun:
    """One rank's part of the end: pings and arrival (other ranks), judging and release (rank 0)."""

    def __init__(self, comm: MPI.Comm, stuck_after_s: float = 0.0, names: Optional[Mapping[int, str]] = None):
        self.comm, self.rank = comm, comm.rank
        self.names: Dict[int, str] = dict(names or {})
        self.silent_s, self.arrive_s, self.patience_s = limits(stuck_after_s)
        self.began: Optional[float] = None
        self.next_ping = 0.0
        self._sends: List[MPI.Request] = []
        if self.rank == 0:
            self.heard = {r: 0.0 for r in range(1, comm.size)}     # monotonic time last heard
            self.arrived: set = set()
            self._buf = np.zeros(2, np.int64)
            self._req = comm.Irecv(self._buf, source=MPI.ANY_SOURCE, tag=TAG_ARRIVE)

    def name(self, rank: int) -> str:
        return f"{rank} ({self.names.get(rank, 'role unknown')})"

    def ranks(self, ranks: Sequence[int], verb: str = "") -> str:
        """'rank 3 (actor 1) is' / 'ranks 3 (actor 1), 4 (actor 2) are' (`verb`: is, did, ...)."""
        many = len(ranks) > 1
        verb = {"is": " are" if many else " is"}.get(verb, f" {verb}" if verb else "")
        return f"rank{'s' if many else ''} {', '.join(map(self.name, ranks))}{verb}"

    def begin(self) -> None:
        """The end starts here (rank 0: its stop decision; others: STOP heard). Idempotent."""
        if self.began is not None:
            return
        self.began = time.monotonic()
        if self.rank == 0:
            for r in self.heard:
                self.heard[r] = max(self.heard[r], self.began)
        else:
            self._say(ALIVE)

    def _say(self, state: int) -> None:
        self._sends = [q for q in self._sends if not q.Test()]
        self._sends.append(self.comm.Isend(np.array([self.rank, state], np.int64), dest=0, tag=TAG_ARRIVE))
        self.next_ping = time.monotonic() + PING_S

    def check(self) -> None:
        """Called from the worker loop during the end: ping (others) or listen and judge (rank 0)."""
        if self.began is None:
            return
        now = time.monotonic()
        if self.rank == 0:
            self.judge(now)
        elif now - self.began > self.patience_s:
            self._rank0_at_fault("still finishing its part")
        elif now >= self.next_ping:
            self._say(ALIVE)

    # -- rank 0 ---------------------------------------------------------------------------------
    def _listen(self, now: float) -> None:
        while self._req.Test():
            source, state = int(self._buf[0]), int(self._buf[1])
            self.heard[source] = now
            if state == ARRIVED:
                self.arrived.add(source)
            self._req = self.comm.Irecv(self._buf, source=MPI.ANY_SOURCE, tag=TAG_ARRIVE)

    def missing(self) -> List[int]:
        return sorted(set(self.heard) - self.arrived)

    def judge(self, now: Optional[float] = None) -> None:
        """Rank 0: end the job naming the silent ranks, or, past `arrive_s`, those still not arrived."""
        now = time.monotonic() if now is None else now
        self._listen(now)
        missing = self.missing()
        silent = [r for r in missing if now - self.heard[r] > self.silent_s]
        if silent:
            worst = max(now - self.heard[r] for r in silent)
            end_job(f"srljax: {self.ranks(silent, 'is')} stuck at the end of the run: silent for "
                    f"{worst:.0f} s (limit {self.silent_s:g} s: distributed.stuck_after_s + 10, at least 30; "
                    f"seen by rank 0, which was waiting for it)")
        if missing and now - self.began > self.arrive_s:
            end_job(f"srljax: {self.ranks(missing, 'did')} not reach the end of the run within "
                    f"{self.arrive_s:g} s (alive, but never finished; seen by rank 0)")

    def late_readers(self, readers: Sequence[int]) -> None:
        """Rank 0, before STOP: parameter readers that have not taken the last parameters."""
        waited = time.monotonic() - self.began
        if readers and waited > self.silent_s:
            end_job(f"srljax: {self.ranks(readers, 'is')} stuck at the end of the run: did not "
                    f"take trainer 0's last parameters within {waited:.0f} s (limit {self.silent_s:g} s; "
                    "seen by rank 0)")

    # -- everyone -------------------------------------------------------------------------------
    def meet(self) -> None:
        """The final barrier: the other ranks arrive and wait for rank 0's release."""
        self.begin()
        one = np.ones(1, np.int64)
        if self.rank != 0:
            self._say(ARRIVED)
            release = self.comm.Irecv(np.zeros(1, np.int64), source=0, tag=TAG_RELEASE)
            while not release.Test():
                supervisor.beat()
                supervisor.check_interrupt()
                if time.monotonic() - self.began > self.patience_s:
                    self._rank0_at_fault("arrived")
                time.sleep(1e-3)
            wait_for(lambda: all(q.Test() for q in self._sends), self.patience_s, "its arrival to be taken")
            return
        while self.missing():
            self.judge()
            supervisor.beat()
            supervisor.check_interrupt()
            time.sleep(1e-3)
        self._req.Cancel()
        self._req.Wait()
        sends = [self.comm.Isend(one, dest=r, tag=TAG_RELEASE) for r in range(1, self.comm.size)]
        wait_for(lambda: all(q.Test() for q in sends), self.patience_s, "the ranks' release")

    def _rank0_at_fault(self, doing: str) -> None:
        end_job(f"srljax: rank {self.name(0)} did not end the run: rank {self.name(self.rank)}, {doing}, had "
                f"no release {self.patience_s:g} s after STOP (rank 0 judges the end within "
                f"{self.arrive_s:g} s)")
