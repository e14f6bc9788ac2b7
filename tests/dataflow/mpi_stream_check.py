"""Run under `mpirun -n 3`: every MPI stream end to end, checked on the receiving side.

Rank 0 consumes samples, serves inference and publishes parameters; ranks 1 and 2 post samples,
ask for actions and read parameters. Prints `OK <rank>` on success; any mismatch raises, and the
failure wrapper takes the whole job down.
"""
import time

import numpy as np
from mpi4py import MPI

from srljax.dataflow.launch.process import guarded
from srljax.dataflow.launch.waiting import wait_for
from srljax.dataflow.wire.mpi import (MpiControl, MpiInferenceClient, MpiInferenceServer, MpiParamPublisher,
                                         MpiParamReader, MpiSampleConsumer, MpiSamplePoster, check_same)
from srljax.dataflow.wire.schema import META, MessageLayout

comm = MPI.COMM_WORLD
rank = comm.rank
N_POSTS, SLOTS, B = 12, 2, 5
samples = MessageLayout({"obs": ((4, B, 3), np.float32), "action": ((4, B), np.int32)})
replies = MessageLayout({"action": ((B,), np.int32), "logp": ((B,), np.float32), "value": ((B,), np.float32)})
PARAMS = 1000


def consumer_side():
    control = MpiControl(comm)
    consumer = MpiSampleConsumer(comm, samples, pool=3)
    server = MpiInferenceServer(comm, [1, 2], SLOTS, (B, 3), replies)
    publisher = MpiParamPublisher(comm, [1, 2], PARAMS)
    for v in range(3):                                # readers must end with the newest
        publisher.publish(np.full(PARAMS, v, np.float32), v)
    seen = {1: [], 2: []}
    answered = 0
    while sum(map(len, seen.values())) < 2 * N_POSTS or answered < 2 * SLOTS * 3:
        publisher.progress()
        s = consumer.consume()
        if s is not None:
            k = len(seen[s.source])
            assert s.version == 100 * s.source + k, (s.source, s.version, k)       # in order per source
            assert np.all(s.data["obs"] == s.source * 1000 + k) and np.all(s.data["action"] == k)
            seen[s.source].append(k)
        for req in server.requests():
            assert np.all(req.obs == 10 * req.client + req.slot)
            server.reply(req, {"action": np.arange(B) + req.client, "logp": np.full(B, -1.0),
                               "value": np.full(B, req.slot)}, version=7)
            answered += 1
    publisher.flush()
    control.send_stop([1, 2])
    wait_for(lambda: set(control.poll_fins()) >= {1, 2}, 20, "FINs")
    consumer.consume()
    consumer.close()
    server.close()
    control.finish()


def poster_side():
    control = MpiControl(comm)
    poster = MpiSamplePoster(comm, 0, samples, slots=2)
    client = MpiInferenceClient(comm, 0, SLOTS, (B, 3), replies)
    reader = MpiParamReader(comm, 0, PARAMS)
    for k in range(N_POSTS):
        i = first(poster.acquire, "a send slot")
        poster.views[i]["obs"][...] = rank * 1000 + k
        poster.views[i]["action"][...] = k
        poster.post(i, 100 * rank + k)
    for round_ in range(3):
        for slot in range(SLOTS):
            client.obs(slot)[...] = 10 * rank + slot
            client.request(slot)
        for slot in range(SLOTS):
            reply = first(lambda: client.response(slot), "a reply")
            assert reply["action"].tolist() == list(range(rank, rank + B)) and reply[META][0] == 7
            assert np.all(reply["value"] == slot)
    newest = [None]

    def read():
        got = reader.latest()
        if got is not None:
            newest[0] = got
        return newest[0] is not None and newest[0][1] == 2
    wait_for(read, 20, "the newest parameters")
    assert np.all(newest[0][0] == 2)
    wait_for(control.stop_requested, 20, "STOP")
    wait_for(lambda: poster.pending() == 0, 20, "samples to be taken")
    control.send_fin(0)
    reader.close()
    control.finish()


def first(fn, what, timeout=20.0):
    """Poll `fn` until it returns something other than None."""
    deadline = time.monotonic() + timeout
    while (out := fn()) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s")
        time.sleep(1e-4)
    return out


def main():
    check_same(comm, samples.signature(), "the sample layout")
    (consumer_side if rank == 0 else poster_side)()
    print(f"OK {rank}", flush=True)


if __name__ == "__main__":
    guarded(rank, "consumer" if rank == 0 else "poster", main)
