import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Tests share two cores with each other's subprocesses: keep XLA to one thread per process.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Compiled XLA programs cached across processes and runs, as the CLI does for every run
# (`srljax.process.enable_compile_cache`: ~/.cache/srljax/jax, `SRLJAX_COMPILE_CACHE=0` turns it
# off): the in-process tests (srljax.train, FusedTrainer) share it with the subprocesses, and a
# program compiled once, by any test or run, is loaded afterwards instead of compiled again.
from srljax.process import enable_compile_cache  # noqa: E402

enable_compile_cache()


import pytest  # noqa: E402


@pytest.fixture
def subprocess_env():
    """Environment for subprocesses: the venv's bin first on PATH (mpirun lives there)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env

