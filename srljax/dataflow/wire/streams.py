"""Streams between workers: samples, inference and parameters; in-process implementations.

Every stream carries fixed-layout messages agreed at start-up (`srljax.dataflow.wire.schema`). All
calls are non-blocking: a worker is a loop over `poll()`, and a call that cannot
proceed returns None (or False) instead of waiting.

The MPI implementations are in `srljax.dataflow.wire.mpi`; the in-process ones here let the
same workers run in one Python process (a notebook, or `scripts/train.py` without mpirun).
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Deque, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple

import numpy as np

from srljax.dataflow.wire.schema import META, Header, MessageLayout

@dataclasses.dataclass
class Sample:
    """One consumed sample message: field views (valid until the next `consume()`), tags."""

    data: Dict[str, np.ndarray]
    version: int
    source: int


@dataclasses.dataclass
class Request:
    """One inference request seen by a policy worker."""

    client: int
    slot: int
    obs: np.ndarray


# ----------------------------------------------------------------------------- interfaces

class SamplePoster(Protocol):
    views: List[Dict[str, np.ndarray]]
    """Field views of each message buffer."""

    def acquire(self) -> Optional[int]:
        """A free message buffer to fill in place, `views[i]` (None while all are busy: backpressure)."""

    def post(self, i: int, version: int) -> None:
        """Send message buffer `i`, tagged with the (oldest) policy version that produced it."""

    def pending(self) -> int:
        """Messages posted and not yet taken by the consumer."""


class SampleConsumer(Protocol):
    def consume(self) -> Optional[Sample]:
        """The next sample message, or None when none has arrived."""


def release(consumer: SampleConsumer) -> None:
    """At the end: give the held message back and cancel what the consumer has posted (MPI)."""
    consumer.consume()
    close = getattr(consumer, "close", None)
    if close is not None:
        close()


class InferenceClient(Protocol):
    def obs(self, slot: int) -> np.ndarray:
        """The request buffer of a ring slot: write the observations here, then `request(slot)`."""

    def request(self, slot: int) -> None: ...

    def response(self, slot: int) -> Optional[Dict[str, np.ndarray]]:
        """The reply to the slot's request (action, logp, value; version in `_meta[0]`), or None."""


class InferenceServer(Protocol):
    def requests(self) -> List[Request]:
        """Every request that has arrived since the last call."""

    def reply(self, request: Request, fields: Mapping[str, np.ndarray], version: int) -> None: ...


class ParamPublisher(Protocol):
    def publish(self, flat: np.ndarray, version: int) -> None: ...


class ParamReader(Protocol):
    def latest(self) -> Optional[Tuple[np.ndarray, int]]:
        """A copy of the newest parameters (flat float32) and their version, if newer than the last."""


# ----------------------------------------------------------------------------- in process

class LocalSampleStream:
    """Sample stream inside one process: a queue of buffers that return to their poster."""

    def __init__(self, layout: MessageLayout, slots_per_poster: int = 2):
        self.layout = layout
        self.slots_per_poster = slots_per_poster
        self.queue: Deque[Tuple["_LocalPoster", int, int]] = collections.deque()

    def poster(self, source: int) -> "_LocalPoster":
        return _LocalPoster(self, source)

    def consumer(self) -> "_LocalConsumer":
        return _LocalConsumer(self)


class _LocalPoster:
    def __init__(self, stream: LocalSampleStream, source: int):
        self.stream, self.source = stream, source
        self.bufs = [stream.layout.alloc() for _ in range(stream.slots_per_poster)]
        self.views = [stream.layout.views(b) for b in self.bufs]
        self.free = list(range(len(self.bufs)))
        self.queued = 0

    def acquire(self) -> Optional[int]:
        return self.free.pop(0) if self.free else None

    def post(self, i: int, version: int) -> None:
        meta = self.views[i][META]
        meta[Header.VERSION], meta[Header.SOURCE] = version, self.source
        self.stream.queue.append((self, i, version))
        self.queued += 1

    def pending(self) -> int:
        return self.queued


class _LocalConsumer:
    def __init__(self, stream: LocalSampleStream):
        self.stream = stream
        self.held: Optional[Tuple[_LocalPoster, int]] = None

    def consume(self) -> Optional[Sample]:
        if self.held is not None:
            poster, index = self.held
            poster.free.append(index)
            poster.queued -= 1
            self.held = None
        if not self.stream.queue:
            return None
        poster, index, version = self.stream.queue.popleft()
        self.held = (poster, index)
        return Sample(poster.views[index], version, poster.source)


class LocalInference:
    """Inference stream inside one process: clients' request buffers and a request queue."""

    def __init__(self, obs_shape: Tuple[int, ...], reply_layout: MessageLayout, envs_per_slot: int):
        self.obs_shape, self.reply_layout, self.envs_per_slot = obs_shape, reply_layout, envs_per_slot
        self.queue: Deque[Request] = collections.deque()
        self.clients: Dict[int, "_LocalInferenceClient"] = {}

    def client(self, client_id: int, slots: int) -> "_LocalInferenceClient":
        c = _LocalInferenceClient(self, client_id, slots)
        self.clients[client_id] = c
        return c

    def server(self) -> "_LocalInferenceServer":
        return _LocalInferenceServer(self)


class _LocalInferenceClient:
    def __init__(self, hub: LocalInference, client_id: int, slots: int):
        self.hub, self.client_id = hub, client_id
        self._obs = [np.zeros((hub.envs_per_slot,) + tuple(hub.obs_shape), np.float32) for _ in range(slots)]
        self._reply = [hub.reply_layout.views(hub.reply_layout.alloc()) for _ in range(slots)]
        self._ready = [False] * slots

    def obs(self, slot: int) -> np.ndarray:
        return self._obs[slot]

    def request(self, slot: int) -> None:
        self._ready[slot] = False
        self.hub.queue.append(Request(self.client_id, slot, self._obs[slot]))

    def response(self, slot: int):
        if not self._ready[slot]:
            return None
        self._ready[slot] = False
        return self._reply[slot]


class _LocalInferenceServer:
    def __init__(self, hub: LocalInference):
        self.hub = hub

    def requests(self) -> List[Request]:
        out = list(self.hub.queue)
        self.hub.queue.clear()
        return out

    def reply(self, request: Request, fields: Mapping[str, np.ndarray], version: int) -> None:
        client = self.hub.clients[request.client]
        views = client._reply[request.slot]
        for k, v in fields.items():
            views[k][...] = v
        views[META][Header.VERSION] = version
        client._ready[request.slot] = True


class LocalParams:
    """Parameter stream inside one process: the newest flat vector and its version."""

    def __init__(self):
        self.flat: Optional[np.ndarray] = None
        self.version = -1

    def publish(self, flat: np.ndarray, version: int) -> None:
        self.flat, self.version = np.array(flat, np.float32, copy=True), int(version)

    def reader(self) -> "_LocalParamReader":
        return _LocalParamReader(self)


class _LocalParamReader:
    def __init__(self, hub: LocalParams):
        self.hub, self.seen = hub, -1

    def latest(self):
        if self.hub.flat is None or self.hub.version <= self.seen:
            return None
        self.seen = self.hub.version
        return self.hub.flat.copy(), self.hub.version


class LocalControl:
    """STOP and FIN inside one process (the MPI version is `wire.mpi.MpiControl`)."""

    def __init__(self, hub: dict, rank: int):
        self.hub, self.rank = hub, rank
        hub.setdefault("stop", False)
        hub.setdefault("fins", {})

    def stop_requested(self) -> bool:
        return self.hub["stop"]

    def send_stop(self, ranks: Sequence[int]) -> None:
        self.hub["stop"] = True

    def send_fin(self, dest: int) -> None:
        self.hub["fins"].setdefault(dest, []).append(self.rank)

    def poll_fins(self) -> List[int]:
        return self.hub["fins"].get(self.rank, [])

    def begin_end(self) -> None:
        pass

    def finish(self, timeout: float = 30.0) -> None:
        pass
