"""The buffer worker: between actors and a trainer, a FIFO of sample messages (numpy only)."""
from __future__ import annotations

from typing import Sequence

from srljax.dataflow.streams import SampleConsumer, SamplePoster, release


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
