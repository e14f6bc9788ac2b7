"""Fused mode: the same seed gives the same run, and a run killed with SIGKILL then resumed ends
exactly where an uninterrupted run does (parameters and metrics)."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from srljax.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parent.parent
TRAIN = str(ROOT / "scripts" / "train.py")
ARGS = ["--config", "cartpole", "--seed", "3", "--set", "total_env_steps=196608", "--set", "log_every_env_steps=8192",
        "--set", "checkpoint_every_logs=2", "--set", "keep_checkpoints=100", "--quiet"]
DETERMINISTIC = ("env_steps", "episode_return", "episodes", "loss", "policy_loss", "value_loss", "entropy",
                 "approx_kl", "policy_version")


def _rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _final_params(run):
    ck = Checkpointer(run)
    state, header = ck.restore(ck.latest())
    return header["step"], state["learner"]


def test_sigkill_then_resume_matches_uninterrupted(tmp_path, subprocess_env):
    full, killed = tmp_path / "full", tmp_path / "killed"
    out = subprocess.run([sys.executable, TRAIN, *ARGS, "--run-dir", str(full)], env=subprocess_env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]

    proc = subprocess.Popen([sys.executable, TRAIN, *ARGS, "--run-dir", str(killed)], env=subprocess_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and len(Checkpointer(killed).list()) < 3 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    n_before = len(_rows(killed))
    assert 0 < n_before < len(_rows(full))

    out = subprocess.run([sys.executable, TRAIN, "--run-dir", str(killed), "--resume", "--quiet"],
                         env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]

    a, b = _rows(full), _rows(killed)
    assert [r["env_steps"] for r in a] == [r["env_steps"] for r in b]
    for ra, rb in zip(a, b):
        for key in DETERMINISTIC:
            assert ra.get(key) == rb.get(key), (key, ra, rb)
    step_a, pa = _final_params(full)
    step_b, pb = _final_params(killed)
    assert step_a == step_b
    leaves_a, leaves_b = _flat(pa), _flat(pb)
    assert leaves_a.keys() == leaves_b.keys()
    for k in leaves_a:
        np.testing.assert_array_equal(leaves_a[k], leaves_b[k], err_msg=k)
    sa = json.loads((full / "summary.json").read_text())
    sb = json.loads((killed / "summary.json").read_text())
    assert sa["episode_return"] == sb["episode_return"] and sa["env_steps"] == sb["env_steps"]


def _flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[prefix + k] = np.asarray(v)
    return out
