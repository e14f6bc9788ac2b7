"""scripts/bench_envs.py --quick: a smoke test of the JSON and the plot (no speed is asserted)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_rows_and_plot(tmp_path, subprocess_env):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_envs.py"), "--quick", "--out", str(out)],
                          env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["meta"]["device"].startswith("cpu")
    jax_rows = [r for r in data["rows"] if r["section"] == "jax"]
    # Each measurement twice in one run: srljax's wrappers and plain gymnax, random and policy actions.
    assert {(r["impl"], r["actions"]) for r in jax_rows} == {("srljax", "random"), ("plain", "random"),
                                                             ("srljax", "policy"), ("plain", "policy")}
    for r in jax_rows:
        assert r["env"] == "gymnax/CartPole-v1" and r["batch"] == 8
        assert r["steps_per_s"] > 0 and r["compile_s"] > 0 and len(r["all_steps_per_s"]) == r["repeats"]
        assert r["srljax_over_plain"] > 0
    gym_rows = [r for r in data["rows"] if r["section"] == "gym"]
    assert {r["env"] for r in gym_rows} == {"gym/CartPole-v1", "gym/Pendulum-v1"}
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "srljax/s" in proc.stdout and "plain/s" in proc.stdout
