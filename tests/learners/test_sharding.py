"""Data parallelism: 4 forced host devices give the same update as 1 device, and stay in sync."""
import json
import subprocess
import sys
from pathlib import Path


def test_four_devices_equal_one_device_and_stay_identical(subprocess_env):
    env = subprocess_env
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
    script = Path(__file__).with_name("sharded_update_check.py")
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["moved"] > 1e-4, "the update must change the parameters for the comparison to mean anything"
    assert res["param_diff"] < 1e-5, res
    assert res["norm_diff"] < 1e-4, res              # relative; float32 sums in another order
    assert res["updates"] == 5
    assert res["device_spread"] == 0.0, res          # replicas bit-identical after several updates
    assert res["env_obs_spread"] > 0.0, res          # while each device steps its own envs
