"""MPI implementations of the streams: preallocated byte buffers moved with mpi4py's buffer methods.

- Samples: a poster owns a few message buffers and sends each with `Issend` (synchronous mode:
  the send completes only once the consumer has matched it, which bounds the samples in flight
  per actor, whatever the message size); the consumer keeps a pool of `Irecv`s posted from any
  source and re-posts each buffer when the next message is consumed.
- Inference: one request buffer and one reply buffer per (actor, ring slot); tags carry the slot.
- Parameters: one flat float32 message per reader; a reader still busy with the previous one is
  sent the newest version later (`progress()`), so publishing never blocks the trainer.
- Control: STOP (trainer 0 -> everyone) and FIN (a poster -> its consumers: "nothing more from me");
  the end of the run (who is named when a rank does not come) is `ending.py`.

No call here blocks: completion is tested, and the callers' loops back off with short sleeps
(MPICH's blocking receives spin a core, and ranks share cores).
"""
from __future__ import annotations

import time
from typing import List, Mapping, Optional, Sequence

import numpy as np
from mpi4py import MPI

from srljax.dataflow.launch.ending import EndOfRun
from srljax.dataflow.launch.waiting import wait_for
from srljax.dataflow.wire.schema import META, Header, MessageLayout
from srljax.dataflow.wire.streams import Request, Sample

TAG_SAMPLE, TAG_PARAMS, TAG_STOP, TAG_FIN, TAG_CHECK = 11, 12, 13, 14, 15    # 16, 17: ending.py
TAG_PRIORITY = 18                       # replay: trainer -> buffer, new priorities (same classes as samples)
TAG_REQUEST, TAG_REPLY = 1000, 2000     # + ring slot


class MpiSamplePoster:
    """Producer end of the sample stream (an actor, or a buffer forwarding to a trainer)."""

    def __init__(self, comm: MPI.Comm, dest: int, layout: MessageLayout, slots: int = 2, tag: int = TAG_SAMPLE):
        self.comm, self.dest, self.layout, self.tag = comm, dest, layout, tag
        self.bufs = [layout.alloc() for _ in range(slots)]
        self.views = [layout.views(b) for b in self.bufs]
        self.reqs: List[Optional[MPI.Request]] = [None] * slots
        self.free = list(range(slots))

    def _reap(self) -> None:
        for i, req in enumerate(self.reqs):
            if req is not None and req.Test():
                self.reqs[i] = None
                self.free.append(i)

    def acquire(self) -> Optional[int]:
        if not self.free:
            self._reap()
        return self.free.pop(0) if self.free else None

    def post(self, i: int, version: int) -> None:
        meta = self.views[i][META]
        meta[Header.VERSION], meta[Header.SOURCE] = version, self.comm.rank
        self.reqs[i] = self.comm.Issend([self.bufs[i], MPI.BYTE], dest=self.dest, tag=self.tag)

    def pending(self) -> int:
        self._reap()
        return sum(r is not None for r in self.reqs)


class MpiSampleConsumer:
    """Consumer end of the sample stream: a pool of receives posted from any source."""

    def __init__(self, comm: MPI.Comm, layout: MessageLayout, pool: int = 4, tag: int = TAG_SAMPLE):
        self.comm, self.layout, self.tag = comm, layout, tag
        self.bufs = [layout.alloc() for _ in range(pool)]
        self.views = [layout.views(b) for b in self.bufs]
        self.reqs = [self._post(i) for i in range(pool)]
        self.held: Optional[int] = None
        self.next = 0

    def _post(self, i: int) -> MPI.Request:
        return self.comm.Irecv([self.bufs[i], MPI.BYTE], source=MPI.ANY_SOURCE, tag=self.tag)

    def consume(self) -> Optional[Sample]:
        if self.held is not None:
            self.reqs[self.held] = self._post(self.held)
            self.held = None
        # Test in a rotating order so that no buffer (and no actor) is favoured.
        n = len(self.reqs)
        for k in range(n):
            i = (self.next + k) % n
            if self.reqs[i].Test():
                self.held, self.next = i, (i + 1) % n
                meta = self.views[i][META]
                return Sample(self.views[i], int(meta[Header.VERSION]), int(meta[Header.SOURCE]))
        return None

    def close(self) -> None:
        """Cancel the posted receives (call once every poster has said FIN)."""
        for i, req in enumerate(self.reqs):
            if i != self.held and req != MPI.REQUEST_NULL:
                req.Cancel()
                req.Wait()
        self.held = None


class MpiInferenceClient:
    """An actor's end of the inference stream: per ring slot, an obs buffer and a reply buffer."""

    def __init__(self, comm: MPI.Comm, server: int, slots: int, obs_shape: Sequence[int],
                 reply_layout: MessageLayout):
        self.comm, self.server = comm, server
        self._obs = [np.zeros(tuple(obs_shape), np.float32) for _ in range(slots)]
        self._reply_bufs = [reply_layout.alloc() for _ in range(slots)]
        self._reply = [reply_layout.views(b) for b in self._reply_bufs]
        self._send: List[Optional[MPI.Request]] = [None] * slots
        self._recv: List[Optional[MPI.Request]] = [None] * slots

    def obs(self, slot: int) -> np.ndarray:
        if self._send[slot] is not None:       # completed long ago: the reply came back
            self._send[slot].Wait()
            self._send[slot] = None
        return self._obs[slot]

    def request(self, slot: int) -> None:
        self._recv[slot] = self.comm.Irecv([self._reply_bufs[slot], MPI.BYTE], source=self.server,
                                           tag=TAG_REPLY + slot)
        self._send[slot] = self.comm.Isend(self._obs[slot], dest=self.server, tag=TAG_REQUEST + slot)

    def response(self, slot: int):
        req = self._recv[slot]
        if req is None or not req.Test():
            return None
        self._recv[slot] = None
        return self._reply[slot]

    def outstanding(self) -> int:
        return sum(r is not None for r in self._recv)


class MpiInferenceServer:
    """A policy worker's end: one posted receive per (client, slot)."""

    def __init__(self, comm: MPI.Comm, clients: Sequence[int], slots: int, obs_shape: Sequence[int],
                 reply_layout: MessageLayout):
        self.comm = comm
        self.keys = [(c, s) for c in clients for s in range(slots)]
        self.index = {k: i for i, k in enumerate(self.keys)}
        self._obs = [np.zeros(tuple(obs_shape), np.float32) for _ in self.keys]
        self._reply_bufs = [reply_layout.alloc() for _ in self.keys]
        self._reply = [reply_layout.views(b) for b in self._reply_bufs]
        self._send: List[Optional[MPI.Request]] = [None] * len(self.keys)
        self._recv = [self._post(i) for i in range(len(self.keys))]

    def _post(self, i: int) -> MPI.Request:
        client, slot = self.keys[i]
        return self.comm.Irecv(self._obs[i], source=client, tag=TAG_REQUEST + slot)

    def requests(self) -> List[Request]:
        done = MPI.Request.Testsome(self._recv)
        if not done:
            return []
        out = []
        for i in done:
            self._recv[i] = MPI.REQUEST_NULL
            client, slot = self.keys[i]
            out.append(Request(client, slot, self._obs[i]))
        return out

    def reply(self, request: Request, fields: Mapping[str, np.ndarray], version: int) -> None:
        i = self.index[(request.client, request.slot)]
        if self._send[i] is not None:
            self._send[i].Wait()               # the client has had this reply: it asked again
        views = self._reply[i]
        for k, v in fields.items():
            views[k][...] = v
        views[META][Header.VERSION] = version
        self._recv[i] = self._post(i)          # the request's obs have been used
        self._send[i] = self.comm.Isend([self._reply_bufs[i], MPI.BYTE], dest=request.client,
                                        tag=TAG_REPLY + request.slot)

    def close(self) -> None:
        for i, req in enumerate(self._recv):
            if req != MPI.REQUEST_NULL:
                req.Cancel()
                req.Wait()
        wait_for(lambda: all(r is None or r.Test() for r in self._send), 30, "inference replies")


class MpiParamPublisher:
    """Trainer 0's end of the parameter stream: the newest flat parameters to every reader."""

    def __init__(self, comm: MPI.Comm, readers: Sequence[int], size: int):
        self.comm, self.readers = comm, list(readers)
        self.layout = MessageLayout({"params": ((size,), np.float32)})
        self.bufs = [self.layout.alloc() for _ in self.readers]
        self.views = [self.layout.views(b) for b in self.bufs]
        self.reqs: List[Optional[MPI.Request]] = [None] * len(self.readers)
        self.flat: Optional[np.ndarray] = None
        self.version = -1
        self.sent = [-1] * len(self.readers)

    def publish(self, flat: np.ndarray, version: int) -> None:
        self.flat, self.version = np.asarray(flat, np.float32), int(version)
        self.progress()

    def progress(self) -> None:
        """Send the newest version to every reader whose previous message has gone."""
        for i, reader in enumerate(self.readers):
            if self.sent[i] >= self.version:
                continue
            if self.reqs[i] is not None:
                if not self.reqs[i].Test():
                    continue
                self.reqs[i] = None
            self.views[i]["params"][...] = self.flat
            self.views[i][META][Header.VERSION] = self.version
            self.reqs[i] = self.comm.Isend([self.bufs[i], MPI.BYTE], dest=reader, tag=TAG_PARAMS)
            self.sent[i] = self.version

    def flush(self, timeout: float = 30.0, end: Optional[EndOfRun] = None) -> None:
        """Deliver everything published (called before STOP, while readers still receive). With
        `end` (trainer 0 at the end of a run), readers that take too long are named, not this rank."""
        def done():
            self.progress()
            late = [r for i, r in enumerate(self.readers)
                    if self.sent[i] < self.version or not (self.reqs[i] is None or self.reqs[i].Test())]
            if late and end is not None:
                end.late_readers(late)
            return not late
        wait_for(done, None if end is not None else timeout, "parameter readers")


class MpiParamReader:
    """A policy worker's (or inline actor's) end: double-buffered, always the newest."""

    def __init__(self, comm: MPI.Comm, publisher: int, size: int):
        self.comm, self.publisher = comm, publisher
        self.layout = MessageLayout({"params": ((size,), np.float32)})
        self.bufs = [self.layout.alloc(), self.layout.alloc()]
        self.views = [self.layout.views(b) for b in self.bufs]
        self.cur = 0
        self.req = self._post()

    def _post(self) -> MPI.Request:
        return self.comm.Irecv([self.bufs[self.cur], MPI.BYTE], source=self.publisher, tag=TAG_PARAMS)

    def latest(self):
        got = None
        while self.req.Test():
            got = self.cur
            self.cur ^= 1
            self.req = self._post()
        if got is None:
            return None
        return self.views[got]["params"].copy(), int(self.views[got][META][Header.VERSION])

    def close(self) -> None:
        self.req.Cancel()
        self.req.Wait()


class MpiControl:
    """STOP and FIN messages, and the final barrier."""

    def __init__(self, comm: MPI.Comm, end: Optional[EndOfRun] = None):
        self.comm = comm
        self.end = end if end is not None else EndOfRun(comm)
        self._next_check = 0.0
        self._stop_buf = np.zeros(1, np.int64)
        self._stop_req = comm.Irecv(self._stop_buf, source=MPI.ANY_SOURCE, tag=TAG_STOP)
        self._fin_buf = np.zeros(1, np.int64)
        self._fin_req = comm.Irecv(self._fin_buf, source=MPI.ANY_SOURCE, tag=TAG_FIN)
        self.fins: List[int] = []
        self._sends: List[MPI.Request] = []
        self._one = np.ones(1, np.int64)
        self.stopped = False

    def stop_requested(self) -> bool:
        if not self.stopped and self._stop_req.Test():
            self.stopped = True
            self.end.begin()
        return self.stopped

    def send_stop(self, ranks: Sequence[int]) -> None:
        self.end.begin()
        self._sends += [self.comm.Isend(self._one, dest=r, tag=TAG_STOP) for r in ranks]

    def send_fin(self, dest: int) -> None:
        self._sends.append(self.comm.Isend(np.array([self.comm.rank], np.int64), dest=dest, tag=TAG_FIN))

    def poll_fins(self) -> List[int]:
        while self._fin_req.Test():
            self.fins.append(int(self._fin_buf[0]))
            self._fin_req = self.comm.Irecv(self._fin_buf, source=MPI.ANY_SOURCE, tag=TAG_FIN)
        return self.fins

    def begin_end(self) -> None:
        """This rank's end begins (rank 0: its stop decision; another trainer: the same decision)."""
        self.end.begin()

    def check_end(self) -> None:
        """Each turn of the worker loop: during the end, say this rank is alive (or, rank 0, judge)."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + 0.05
        if self.comm.rank != 0:
            self.stop_requested()
        self.end.check()

    def finish(self, timeout: float = 30.0) -> None:
        """Cancel the control receives, let sends complete, then meet every rank at the end
        (`ending.EndOfRun.meet`: a rank that does not arrive is named by rank 0, not those waiting)."""
        for req in (self._stop_req, self._fin_req):
            if req != MPI.REQUEST_NULL and not req.Test():
                req.Cancel()
                req.Wait()
        wait_for(lambda: all(r.Test() for r in self._sends), max(timeout, self.end.patience_s), "control messages")
        self.end.meet()


def check_same(comm: MPI.Comm, values: np.ndarray, what: str) -> None:
    """Fail on every rank if an int64 vector (a layout signature) differs between ranks."""
    values = np.ascontiguousarray(values, np.int64)
    lo, hi = np.empty_like(values), np.empty_like(values)
    comm.Allreduce(values, lo, op=MPI.MIN)
    comm.Allreduce(values, hi, op=MPI.MAX)
    if not np.array_equal(lo, hi):
        raise RuntimeError(f"ranks disagree on {what}: {values.tolist()} vs range {lo.tolist()}..{hi.tolist()}")
