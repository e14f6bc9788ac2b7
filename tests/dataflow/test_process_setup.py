"""Process set-up of ranks that run jax: XLA's CPU pool sized on one core, every thread given all
cores back."""
import json
import os
import subprocess
import sys

import pytest

CHECK = r"""
import json, os
from srljax import process as launch
allowed = os.sched_getaffinity(0)
launch.start_jax_on_one_core()
import jax, jax.numpy as jnp
jnp.arange(8.0).sum().block_until_ready()
masks = [sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")]
print(json.dumps({"allowed": sorted(allowed), "masks": masks}))
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or not os.path.isdir("/proc/self/task"),
                    reason="needs Linux CPU affinity")
def test_jax_ranks_keep_every_core_after_starting_xla_on_one(subprocess_env):
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=subprocess_env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(got["masks"]) > 1                       # jax started threads of its own
    assert all(m == got["allowed"] for m in got["masks"]), got


def test_fused_runs_pick_their_cpu_pool_from_the_config():
    """cpu_threads=0 (auto): one thread for small fused env batches, XLA's own pool otherwise;
    distributed configs are left to their ranks; a given count wins."""
    from srljax import config as C
    from srljax import presets
    from srljax.process import SMALL_FUSED_ENVS, fused_cpu_threads

    small = presets.get("cartpole_purejaxrl")
    assert small.env.num_envs <= SMALL_FUSED_ENVS
    assert fused_cpu_threads(small) == 1
    assert fused_cpu_threads(C.override(small, {"env.num_envs": SMALL_FUSED_ENVS + 1})) == 0
    assert fused_cpu_threads(C.override(small, {"env.num_envs": 256, "cpu_threads": 2})) == 2
    assert fused_cpu_threads(C.override(small, {"mode": "distributed"})) == 0


PREPARE = r"""
import json, os
from srljax import config as C, presets, process
allowed = os.sched_getaffinity(0)
process.prepare_fused_backend(C.override(presets.get("cartpole_purejaxrl"), {}))
from jax._src import xla_bridge
started = bool(getattr(xla_bridge, "_backends", None))
import jax.numpy as jnp
jnp.arange(8.0).sum().block_until_ready()
masks = [sorted(os.sched_getaffinity(int(t))) for t in os.listdir("/proc/self/task")]
print(json.dumps({"allowed": sorted(allowed), "masks": masks, "started": started}))
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or not os.path.isdir("/proc/self/task"),
                    reason="needs Linux CPU affinity")
def test_a_small_fused_run_starts_xla_before_its_config_is_checked(subprocess_env):
    env = {k: v for k, v in subprocess_env.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    out = subprocess.run([sys.executable, "-c", PREPARE], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["started"] == (len(got["allowed"]) > 1)   # on one core there is nothing to narrow
    assert all(m == got["allowed"] for m in got["masks"]), got
