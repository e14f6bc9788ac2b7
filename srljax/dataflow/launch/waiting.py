"""Waiting without blocking: every wait in srljax is a test-and-sleep loop that beats the rank's
supervisor and raises a pending Ctrl-C or SIGTERM, so nothing sits in a blocking MPI call."""
from __future__ import annotations

import os
import time
from typing import Callable, Optional

from srljax.dataflow.launch import supervisor

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
