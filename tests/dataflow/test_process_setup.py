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
