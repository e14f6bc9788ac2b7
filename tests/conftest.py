import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Tests share two cores with each other's subprocesses: keep XLA to one thread per process.
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")


import pytest  # noqa: E402


@pytest.fixture
def subprocess_env():
    """Environment for subprocesses: the venv's bin first on PATH (mpirun lives there)."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# The longest test files first (about their order in a cold run, compile cache empty), the rest
# in collection order: `make test`'s two workers take whole files in this order, so the long ones
# start at once and short ones fill the end, instead of a long file starting last and running alone.
LONGEST_FIRST = (
    "dataflow/test_end_of_run.py", "test_bad_input.py", "test_gpu_check.py", "dataflow/test_fused_sharding.py",
    "dataflow/test_faults.py", "dataflow/test_liveness.py", "learners/test_dqn.py", "test_soak.py",
    "learners/test_recurrent.py", "test_train_cli.py", "dataflow/test_distributed_resume.py",
    "dataflow/test_mpi.py", "dataflow/test_replay.py", "test_resume_determinism.py", "test_notebooks.py",
    "test_learning.py", "test_matchup.py", "envs/test_jax_envs.py", "test_disk_full.py", "test_tracking.py",
    "dataflow/test_multihost_netns.py", "envs/test_pettingzoo_adapter.py", "test_playback.py",
)


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}

    def key(item):
        rel = Path(str(item.fspath)).resolve().relative_to(ROOT / "tests").as_posix()
        return rank.get(rel, len(rank))
    items.sort(key=key)         # stable: a file's tests keep their order, other files theirs
