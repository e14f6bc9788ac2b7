"""scripts/gpu_check.py at tiny sizes on the CPU: every section runs and writes its figures."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_tiny_on_cpu(tmp_path, subprocess_env):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--tiny", "--out", str(out)],
                          env=subprocess_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(out.read_text())
    assert got["device"]["platform"] == "cpu" and got["tiny"]
    curve = {(r["env"], r["batch"]): r for r in got["env_steps_per_s"]}
    assert {("gymnax/CartPole-v1", 4), ("gymnax/CartPole-v1", 16), ("brax/ant", 4), ("hns_jax/quadrant", 2)} <= set(curve)
    assert all(r["env_steps_per_s"] > 0 and r["compile_s"] > 0 for r in curve.values())
    assert got["fused_ppo_brax_ant"]["env_steps_per_s"] > 0 and got["fused_ppo_brax_ant"]["updates"] >= 1
    assert got["learner_update"]["update_ms_median"] > 0
    hns = got["fused_hns_jax_quadrant"]
    assert hns["preset"] == "hns_jax_quadrant" and hns["env_steps_per_s"] > 0 and hns["updates"] >= 1
