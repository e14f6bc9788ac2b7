"""Run under `mpirun -n 4` (supervisors off): the end of a run, with one rank at fault, and who is named.

Rank 0 plays trainer 0 (it sends STOP and judges the end); rank 1 plays a policy worker serving
ranks 2 and 3, the actors, which wait for its FIN (standing in for their last replies) before they
finish. The deadlines are shortened (a real run's are at least 30 s). `argv[1]` picks the fault:

- `none`: everyone arrives, exit 0;
- `silent-policy`: rank 1 hears STOP, then goes silent for ever (a non-actor rank hung at the end):
  ranks 2 and 3 wait for it but keep saying they are alive; only rank 1 may be named;
- `never-done`: rank 3 stays alive but never finishes: it is named as not reaching the end;
- `silent-judge`: rank 0 sends STOP, then goes silent: the other ranks name rank 0.
"""
import sys
import time

from mpi4py import MPI

from srljax.dataflow.launch.ending import EndOfRun
from srljax.dataflow.launch.process import guarded
from srljax.dataflow.wire.mpi import MpiControl

SILENT_S, ARRIVE_S, PATIENCE_S = 3.0, 6.0, 9.0
NAMES = {0: "trainer 0", 1: "policy 0", 2: "actor 0", 3: "actor 1"}


def main(fault: str) -> None:
    comm = MPI.COMM_WORLD
    end = EndOfRun(comm, 0.0, NAMES)
    end.silent_s, end.arrive_s, end.patience_s = SILENT_S, ARRIVE_S, PATIENCE_S
    control = MpiControl(comm, end)
    rank = comm.rank

    def loop(done):                           # a worker's loop: `run_loop` with its end checks
        while not done():
            control.check_end()
            time.sleep(1e-3)

    if rank == 0:
        control.send_stop([1, 2, 3])
        if fault == "silent-judge":
            time.sleep(3600)
        loop(lambda: {1, 2, 3} <= set(control.poll_fins()))
    elif rank == 1:
        loop(control.stop_requested)
        if fault == "silent-policy":
            time.sleep(3600)
        for dest in (0, 2, 3):
            control.send_fin(dest)
    else:
        loop(lambda: control.stop_requested() and 1 in control.poll_fins())
        if fault == "never-done" and rank == 3:
            loop(lambda: False)
        control.send_fin(0)
    control.finish()
    print(f"OK {rank}", flush=True)


if __name__ == "__main__":
    guarded(MPI.COMM_WORLD.rank, NAMES[MPI.COMM_WORLD.rank], lambda: main(sys.argv[1]))
