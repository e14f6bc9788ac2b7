"""Sample-stream throughput against raw mpi4py Send/Recv of the same bytes, in the same run.

    mpirun -n 2 python scripts/bench_exchange.py [--sizes 65536,1048576,16777216] [--json out.json]

Rank 0 posts sample messages, rank 1 consumes them; the raw baseline sends the same number of
bytes with blocking `Send`/`Recv` into one preallocated buffer (the physical limit of the stream).
Two ways of waiting on the stream are timed: `spin` (re-test in a loop that yields the core;
blocking MPI calls spin too) and `backoff` (the waits srljax's workers use: a short spin, then
sleeps, so ranks sharing a core do not burn it). Throughput is one-way payload bytes per second.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from mpi4py import MPI  # noqa: E402

from srljax.dataflow.launch.waiting import Backoff  # noqa: E402
from srljax.dataflow.wire.mpi import MpiSampleConsumer, MpiSamplePoster  # noqa: E402
from srljax.dataflow.wire.schema import MessageLayout  # noqa: E402


def count_for(size: int, seconds: float) -> int:
    return int(max(20, min(2000, seconds * 4e9 / size)))


def raw(comm, size: int, n: int) -> float:
    buf = np.ones(size, np.uint8)
    ack = np.zeros(1, np.uint8)
    comm.Barrier()
    t = time.perf_counter()
    for _ in range(n):
        if comm.rank == 0:
            comm.Send(buf, dest=1, tag=1)
        else:
            comm.Recv(buf, source=0, tag=1)
    if comm.rank == 0:
        comm.Recv(ack, source=1, tag=2)
    else:
        comm.Send(ack, dest=0, tag=2)
    return n * size / (time.perf_counter() - t)


def stream(comm, size: int, n: int, spin: bool) -> float:
    layout = MessageLayout({"data": ((size,), np.uint8)})
    backoff = Backoff(spin=float("inf") if spin else 2e-4)
    ack = np.zeros(1, np.uint8)
    if comm.rank == 0:
        end = MpiSamplePoster(comm, dest=1, layout=layout, slots=2)
    else:
        end = MpiSampleConsumer(comm, layout, pool=4)
    comm.Barrier()
    t = time.perf_counter()
    if comm.rank == 0:
        for v in range(n):
            while (i := end.acquire()) is None:
                backoff.idle()
            backoff.busy()
            end.post(i, v)
        while end.pending():
            backoff.idle()
        comm.Recv(ack, source=1, tag=2)
    else:
        got = 0
        while got < n:
            if end.consume() is None:
                backoff.idle()
            else:
                backoff.busy()
                got += 1
        end.consume()               # hand the last buffer back before cancelling the pool
        end.close()
        comm.Send(ack, dest=0, tag=2)
    return n * size / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="65536,1048576,16777216", help="message sizes in bytes")
    parser.add_argument("--seconds", type=float, default=0.25, help="rough time per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="best of this many")
    parser.add_argument("--json", default=None, help="write the results here too")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    if comm.size != 2:
        if comm.rank == 0:
            sys.stderr.write("bench_exchange: run with mpirun -n 2\n")
        sys.exit(2)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        n = count_for(size, args.seconds)
        best = {"raw": 0.0, "spin": 0.0, "backoff": 0.0}
        for _ in range(args.repeats):
            best["raw"] = max(best["raw"], raw(comm, size, n))
            best["spin"] = max(best["spin"], stream(comm, size, n, spin=True))
            best["backoff"] = max(best["backoff"], stream(comm, size, n, spin=False))
        rows.append({"bytes": size, "messages": n, "raw_GBps": best["raw"] / 1e9,
                     "stream_GBps": best["spin"] / 1e9, "stream_backoff_GBps": best["backoff"] / 1e9,
                     "ratio": best["spin"] / best["raw"], "ratio_backoff": best["backoff"] / best["raw"]})
    if comm.rank == 1:
        return
    print(f"{'bytes':>10} {'msgs':>6} {'raw GB/s':>9} {'stream GB/s':>12} {'ratio':>6} "
          f"{'backoff GB/s':>13} {'ratio':>6}")
    for r in rows:
        print(f"{r['bytes']:>10} {r['messages']:>6} {r['raw_GBps']:>9.2f} {r['stream_GBps']:>12.2f} "
              f"{r['ratio']:>6.2f} {r['stream_backoff_GBps']:>13.2f} {r['ratio_backoff']:>6.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": rows, "mpi": MPI.Get_library_version().splitlines()[0]}, f, indent=1)


if __name__ == "__main__":
    main()
