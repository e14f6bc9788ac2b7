"""scripts/soak.py in miniature: 18 s of RSS sampling under mpirun -n 4, then one SIGSTOP of a non-lead
rank (short stuck deadline) and the --resume of that run to a small budget. Keeps the script from rotting."""
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOAK = [sys.executable, str(ROOT / "scripts" / "soak.py")]


def test_soak_script_runs_end_to_end(tmp_path, subprocess_env):
    out = tmp_path / "soak"
    proc = subprocess.run(SOAK + ["--minutes", "0.3", "--warmup-minutes", "0.05", "--sample-s", "1.5", "--tries", "1",
                                  "--signals", "stop", "--stuck-after-s", "8", "--fault-steps", "0",
                                  "--resume-steps", "10000", "--seed", "3", "--out", str(out)],
                          capture_output=True, text=True, timeout=400, env=subprocess_env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "soak: all checks passed" in proc.stdout
    result = json.loads((out / "soak.json").read_text())
    mem = result["memory"]
    assert mem["exit_code"] == 130 and [r["rank"] for r in mem["ranks"]] == [0, 1, 2, 3]
    assert all(r["rss_end_mb"] > 20 for r in mem["ranks"]), mem["ranks"]       # real RSS figures, in MB
    with open(out / "rss.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["rank"] for r in rows} == {"0", "1", "2", "3"} and len(rows) >= 4 * 8
    (t,) = result["tries"]
    assert t["signal"] == "SIGSTOP" and t["rank"] in (1, 2, 3)
    assert t["exit_code"] not in (0, None) and t["exit_s"] <= 8 + 10, t
    assert t["right_rank_named"] and t["named"] == [f"{t['rank']} ({t['role']}) is stuck"], t
    # the resume goes on from the checkpoint to the return target (475) or to 10,000 env steps beyond it
    assert t["resume_exit_code"] == 0 and t["resume_ok"] and t["resume_reached"] in ("return", "budget"), t
    assert t["resume_env_steps"] > t["checkpoint_env_steps"], t
    if t["resume_reached"] == "budget":
        assert t["resume_env_steps"] >= t["checkpoint_env_steps"] + 10000, t
    assert "rank" in proc.stdout and "resume" in proc.stdout


def test_bad_option_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "never"
    proc = subprocess.run(SOAK + ["--ranks", "2", "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == "soak: error: --ranks must be >= 3", proc.stderr
    assert not out.exists()
