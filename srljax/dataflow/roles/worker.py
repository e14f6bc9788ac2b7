"""The worker protocol every role follows, and the loop that drives one.

A worker is a loop over `poll()`: each call does what can be done now without waiting and says
whether it did anything. The same workers run as MPI ranks or side by side in one process.
`done` turns true once the worker has finished its part of the shutdown; `close()` releases
what it holds (posted receives, envs) and may be called more than once.
"""
from __future__ import annotations

from typing import Protocol

from srljax.dataflow.launch import supervisor
from srljax.dataflow.launch.waiting import Backoff


class Worker(Protocol):
    done: bool

    def poll(self) -> bool: ...

    def close(self) -> None: ...


def run_loop(worker: Worker) -> None:
    """Poll until done, backing off politely while there is nothing to do; each turn tells the
    rank's supervisor it is alive (and, once the run is ending, rank 0: `ending.py`)."""
    backoff = Backoff()
    check_end = getattr(getattr(worker, "control", None), "check_end", lambda: None)
    while not worker.done:
        supervisor.beat()
        supervisor.check_interrupt()
        check_end()                     # at the end of the run: tell rank 0 this rank is alive
        if worker.poll():
            backoff.busy()
        else:
            backoff.idle()
