"""Run under `mpirun -n 2`: merge_obs_norm equals the statistics of both ranks' batches at once."""
import numpy as np
from mpi4py import MPI

from srljax.dataflow.launch.process import configure_process, guarded

configure_process()
import jax.numpy as jnp  # noqa: E402

from srljax.dataflow.roles.sync import merge_obs_norm  # noqa: E402
from srljax.learners import normalizer  # noqa: E402


def main():
    comm = MPI.COMM_WORLD
    rng = np.random.default_rng(0)
    first = rng.normal(size=(50, 3)).astype(np.float32)
    batches = [rng.normal(loc=r + 1.0, size=(20 + 10 * r, 3)).astype(np.float32) for r in range(2)]
    before = normalizer.update(normalizer.RunningStats.create((3,)), jnp.asarray(first))
    mine = normalizer.update(before, jnp.asarray(batches[comm.rank]))
    merged = merge_obs_norm(comm, before, mine)
    everything = np.concatenate([first] + batches)
    np.testing.assert_allclose(float(merged.count), len(everything))
    np.testing.assert_allclose(np.asarray(merged.mean), everything.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(merged.m2) / len(everything), everything.var(0), rtol=1e-3)
    print("OK", flush=True)


guarded(MPI.COMM_WORLD.rank, "check", main)
