"""Keeping several trainer ranks in step: gradients, running statistics, counters, the stop.

With several trainers every gradient is averaged across them inside the jitted update
(`mpi_grad_reduce`: an MPI allreduce of the flattened gradients through `io_callback`); after each
update their observation and value statistics are merged exactly (`merge_obs_norm`), and one
small allreduce of the counters that decide when to stop makes every trainer run the same number
of updates, so their parameters stay identical.
"""
from __future__ import annotations

from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from srljax.dataflow.launch.waiting import wait_for


def mpi_grad_reduce(comm):
    """`grad_reduce` for the learner: the mean of a gradient pytree over the ranks of `comm`."""
    from jax.experimental import io_callback
    from mpi4py import MPI

    def host_mean(flat):
        send = np.ascontiguousarray(flat, np.float32)
        out = np.empty_like(send)
        req = comm.Iallreduce(send, out, op=MPI.SUM)
        wait_for(req.Test, 600, "the gradient allreduce")
        return out / np.float32(comm.size)

    def reduce(grads):
        flat, unravel = ravel_pytree(grads)
        flat = flat.astype(jnp.float32)
        mean = io_callback(host_mean, jax.ShapeDtypeStruct(flat.shape, jnp.float32), flat, ordered=False)
        return unravel(mean.astype(flat.dtype))

    return reduce


def merge_obs_norm(comm, before, after):
    """Make every trainer's observation statistics those of all trainers' batches together.

    Each trainer folded its own batch into the same `before` statistics (count, mean, M2); the
    batches' counts, sums and sums of squares are recovered, summed over trainers, and refolded.
    """
    from mpi4py import MPI

    def merge(b, a):
        c0, m0, q0 = float(b.count), np.asarray(b.mean, np.float64), np.asarray(b.m2, np.float64)
        c1, m1, q1 = float(a.count), np.asarray(a.mean, np.float64), np.asarray(a.m2, np.float64)
        n = c1 - c0
        s = c1 * m1 - c0 * m0
        sq = (q1 + c1 * m1 ** 2) - (q0 + c0 * m0 ** 2)
        vec = np.concatenate([[n], s.ravel(), sq.ravel()])
        tot = np.empty_like(vec)
        comm.Allreduce(vec, tot, op=MPI.SUM)
        k = m0.size
        count = c0 + tot[0]
        mean = (c0 * m0.ravel() + tot[1:1 + k]) / count
        m2 = q0.ravel() + c0 * m0.ravel() ** 2 + tot[1 + k:] - count * mean ** 2
        return type(a)(count=jnp.asarray(count, jnp.float32), mean=jnp.asarray(mean.reshape(m0.shape), jnp.float32),
                       m2=jnp.asarray(np.maximum(m2, 0.0).reshape(m0.shape), jnp.float32))

    is_stats = lambda x: x is None or (hasattr(x, "m2") and hasattr(x, "count"))  # noqa: E731
    return jax.tree.map(lambda b, a: None if b is None else merge(b, a), before, after, is_leaf=is_stats)


class TrainerSync:
    """The cross-trainer steps of an update; with one trainer (`comm` None or of size 1) they are local."""

    STATS = ("obs_norm", "value_norm")

    def __init__(self, comm=None):
        self.comm = comm if comm is not None and comm.size > 1 else None

    def grad_reduce(self):
        """The learner's `grad_reduce` (None with one trainer)."""
        return mpi_grad_reduce(self.comm) if self.comm is not None else None

    def merge_stats(self, before, after):
        """`after` with its running statistics those of every trainer's batch (each folded in its own)."""
        if self.comm is None:
            return after
        for name in self.STATS:
            if getattr(before, name, None) is not None:
                after = after.replace(**{name: merge_obs_norm(self.comm, getattr(before, name), getattr(after, name))})
        return after

    def totals(self, pending: np.ndarray, want_stop: bool) -> Tuple[np.ndarray, bool]:
        """(pending counters summed over trainers, whether any trainer wants to stop)."""
        if self.comm is None:
            return pending, want_stop
        from mpi4py import MPI
        vec = np.append(pending, float(want_stop))
        out = np.empty_like(vec)
        req = self.comm.Iallreduce(vec, out, op=MPI.SUM)
        wait_for(req.Test, 600, "the trainers' counter allreduce")
        return out[:-1], bool(out[-1])

    def gather(self, value) -> Optional[list]:
        """`value` of every trainer, on trainer 0 (a list with one entry when alone)."""
        return [value] if self.comm is None else self.comm.gather(value, root=0)
