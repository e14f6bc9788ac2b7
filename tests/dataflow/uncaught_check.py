"""Run under `mpirun -n 3`: rank 0 raises outside any worker while the others wait in a barrier."""
from srljax.dataflow.launch.process import configure_process

configure_process()          # installs the abort-on-uncaught-exception hook under mpirun
from mpi4py import MPI  # noqa: E402

if MPI.COMM_WORLD.rank == 0:
    raise RuntimeError("uncaught on rank 0")
MPI.COMM_WORLD.Barrier()
