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


def test_fused_runs_pick_their_cpu_devices_from_the_config(monkeypatch):
    """cpu_devices=0: one XLA CPU device per allowed core, as many as divide env.num_envs; a given
    count wins; distributed configs get one; a count that does not split the batch is refused."""
    from srljax import config as C
    from srljax import presets, process
    from srljax.errors import UserError

    cfg = C.override(presets.get("cartpole_purejaxrl"), {"env.num_envs": 6, "cpu_devices": 0})
    for cores, want in ((1, 1), (2, 2), (3, 3), (4, 3), (6, 6), (8, 6)):
        monkeypatch.setattr(process.os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert process.fused_cpu_devices(cfg) == want, cores
    assert process.fused_cpu_devices(C.override(cfg, {"cpu_devices": 3})) == 3
    assert process.fused_cpu_devices(C.override(cfg, {"mode": "distributed"})) == 1
    assert process.fused_cpu_devices(presets.get("cartpole")) == 1          # the default: one device
    assert presets.get("hns_jax_quadrant").cpu_devices == 0
    for bad in ({"cpu_devices": -1}, {"cpu_devices": 4}):
        with pytest.raises(UserError, match="cpu_devices"):
            C.validate(C.override(cfg, bad))


DEVICES = r"""
import json, os
flags = os.environ.get("XLA_FLAGS", "").split()
os.environ["XLA_FLAGS"] = " ".join(f for f in flags if "device_count" not in f)
import srljax
r = srljax.train("cartpole_purejaxrl", overrides={"cpu_devices": 2, "total_env_steps": 2048,
                 "log_every_env_steps": 1024}, run_dir=None, quiet=True)
import jax
print(json.dumps({"devices": len(jax.local_devices()), "run_devices": r.summary["devices"]}))
"""


def test_a_fused_run_splits_its_envs_over_the_cpu_devices_it_asks_for(subprocess_env):
    out = subprocess.run([sys.executable, "-c", DEVICES], capture_output=True, text=True, env=subprocess_env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {"devices": 2, "run_devices": 2}, got
