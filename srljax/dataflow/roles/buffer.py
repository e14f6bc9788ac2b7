"""Buffer workers between actors and a trainer (numpy only).

- `BufferWorker` (algorithms that learn from rollouts): a FIFO of sample messages;
- `ReplayBufferWorker` (algorithms that learn from replay): stores, samples, takes priorities back.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, List, Sequence

import numpy as np

from srljax.dataflow.replay.store import RatioController, ReplayStore
from srljax.dataflow.wire.schema import META, Header
from srljax.dataflow.wire.streams import SampleConsumer, SamplePoster, release


class BufferWorker:
    """Sits between actors and a trainer: takes samples from its actors and forwards them.

    Its message buffers form a FIFO that absorbs bursts, so actors rarely wait on a busy trainer.
    """

    def __init__(self, consumer: SampleConsumer, poster: SamplePoster, control, sources: Sequence[int],
                 sink: int):
        self.consumer, self.poster, self.control = consumer, poster, control
        self.sources, self.sink = set(sources), sink
        self.held = None
        self.forwarded = 0
        self.done = False

    def poll(self) -> bool:
        progress = False
        if self.held is None:
            self.held = self.consumer.consume()
            progress = self.held is not None
        if self.held is not None:
            i = self.poster.acquire()
            if i is not None:
                dst = self.poster.views[i]
                for name, src in self.held.data.items():
                    dst[name][...] = src
                self.poster.post(i, self.held.version)
                self.held = None
                self.forwarded += 1
                progress = True
        if (self.control.stop_requested() and self.held is None
                and self.sources <= set(self.control.poll_fins()) and not self.poster.pending()):
            self.close()
            self.control.send_fin(self.sink)
            self.done = True
            return True
        return progress

    def close(self) -> None:
        release(self.consumer)


@dataclasses.dataclass
class ReplayStreams:
    """A replay buffer's ends: its actors' rollouts in, replay batches out, priorities back in."""

    consumer: SampleConsumer         # rollouts from its actors
    poster: SamplePoster             # replay messages to its trainer (`schema.replay_batches`)
    priorities: SampleConsumer       # new priorities from its trainer (`schema.priorities`)
    control: Any
    sources: Sequence[int]           # its actors
    sink: int                        # its trainer


class ReplayBufferWorker:
    """A replay stage (Ape-X): stores its actors' rollouts as n-step transitions, serves sampled
    batches to its trainer at the replay ratio and applies the priorities the trainer sends back.

    Flow control both ways (`replay.store.RatioController`): no batch is served past the target
    ratio (the trainer waits for env steps), and no rollout is taken while the trainer owes more
    than the slack (the actors' sample buffers stay in flight: backpressure).
    """

    def __init__(self, streams: ReplayStreams, store: ReplayStore, ratio: RatioController, steps_per_sample: int,
                 seed: int):
        self.streams, self.store, self.ratio = streams, store, ratio
        self.consumer, self.poster, self.control = streams.consumer, streams.poster, streams.control
        self.sources, self.sink = set(streams.sources), streams.sink
        self.steps_per_sample = int(steps_per_sample)
        self.rng = np.random.default_rng([seed, 4099])
        self.episodes: List[np.ndarray] = []
        self.unsent = np.zeros(2, np.int64)          # env steps and env resets since the last message
        self.newest = 0
        self.served = 0
        self.held_s, self.held_since = 0.0, None     # time its actors were held back (flow control)
        self.stopping = self.done = False

    def poll(self) -> bool:
        progress = self._take_priorities()
        if not self.stopping and self.control.stop_requested():
            self.stopping = True
        if self.stopping:
            return self._drain() or progress
        for _ in range(4):
            if not self.ratio.may_take(self.steps_per_sample):
                self.held_since = time.perf_counter() if self.held_since is None else self.held_since
                break
            if self.held_since is not None:
                self.held_s += time.perf_counter() - self.held_since
                self.held_since = None
            sample = self.consumer.consume()
            if sample is None:
                break
            self._store(sample.data)
            progress = True
        if self.ratio.may_serve(self.store.s.per_message) and self.store.size >= self.store.s.batch_size:
            progress = self._serve() or progress
        return progress

    def _take_priorities(self) -> bool:
        got = False
        while True:
            msg = self.streams.priorities.consume()
            if msg is None:
                return got
            if not self.stopping:
                self.store.set_priorities(msg.data["id"], msg.data["priority"])
            got = True

    def _store(self, data) -> None:
        steps = int(data["terminated"].size)
        self.store.add(data)
        self.ratio.took(steps)
        self.unsent += (steps, int(data["env_resets"][0]))
        n_eps = int(data[META][Header.EPISODES])
        if n_eps:
            self.episodes.extend(np.array(data["episodes"][:n_eps]))
        self.newest = max(self.newest, int(data[META][Header.NEWEST]))

    def _serve(self) -> bool:
        i = self.poster.acquire()
        if i is None:
            return False
        view, s = self.poster.views[i], self.store.s
        for k in range(s.batches_per_message):
            out = {name: view[name][k] for name in ("obs", "action", "reward", "discount", "next_obs")}
            ids, _, weight = self.store.sample(s.batch_size, self.rng, out=out)
            view["id"][k], view["weight"][k] = ids, weight
        rows = min(len(self.episodes), view["episodes"].shape[0])
        if rows:
            view["episodes"][:rows] = np.stack(self.episodes[:rows])
            del self.episodes[:rows]
        view[META][Header.EPISODES] = rows
        view["counts"][:] = (self.unsent[0], self.unsent[1], self.store.size, self.store.priority_updates,
                             int(1000 * self.held_s))
        self.unsent[:] = 0
        self.poster.post(i, self.newest)
        self.ratio.served_batch(s.per_message)
        self.served += 1
        return True

    def _drain(self) -> bool:
        """After STOP: take (and discard) rollouts until every actor and the trainer have said FIN."""
        progress = self.consumer.consume() is not None
        fins = set(self.control.poll_fins())
        if self.sources <= fins and self.sink in fins and not self.poster.pending():
            self.close()
            self.control.send_fin(self.sink)
            self.done = True
            return True
        return progress

    def close(self) -> None:
        release(self.consumer)
        release(self.streams.priorities)
