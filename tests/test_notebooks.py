"""The notebooks under notebooks/ run headless in a real Jupyter kernel; a failing cell fails the test.

The kernel is this test's own Python (the venv's), registered in a temporary kernelspec directory,
with XLA held to one thread as in the rest of the suite. Each notebook asserts its own results
(the prototype notebook: its custom on-policy algorithm solves CartPole, return >= 475). The kernel
has SRLJAX_NOTEBOOK_QUICK=1: the prototype notebook's off-policy section (a Munchausen DQN loss,
fused then distributed in-process) then runs on a few thousand env steps and checks that it trains
(gradient steps, finite losses, priority updates) rather than that it solves CartPole.
"""
import json
import os
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "srljax-test"


@pytest.fixture(scope="module")
def kernel_manager_factory(tmp_path_factory):
    """Kernel managers for a kernelspec that runs `sys.executable -m ipykernel_launcher`."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    kernels = tmp_path_factory.mktemp("kernels")
    spec_dir = kernels / KERNEL
    spec_dir.mkdir()
    env = {
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"),
        "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "SRLJAX_NOTEBOOK_QUICK": "1",     # sections that read it run on a few thousand env steps
    }
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "srljax (test)", "language": "python", "env": env}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)])
    return lambda: KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert "prototype_algorithm.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_manager_factory, tmp_path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, km=kernel_manager_factory(), timeout=600,
                                     resources={"metadata": {"path": str(ROOT)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    finally:
        nbformat.write(nb, tmp_path / path.name)      # the executed copy, for a look when it fails
    wall = time.perf_counter() - t0
    print(f"{path.name}: {wall:.0f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code")


def test_the_prototype_notebook_has_an_off_policy_loss_in_at_most_40_lines_run_in_both_modes():
    nb = nbformat.read(ROOT / "notebooks" / "prototype_algorithm.ipynb", as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    loss_cell = next(src for src in code if "def munchausen_loss(learner, params, target_params, batch, weight_n" in src)
    assert len([line for line in loss_cell.splitlines() if line.strip()]) <= 40
    calls = "\n".join(code)
    for preset in ("cartpole_dqn", "gym_cartpole_dqn"):        # fused, then distributed in one process
        assert f'srljax.get_config("{preset}"' in calls
    assert calls.count("loss=munchausen_loss)") == 2
