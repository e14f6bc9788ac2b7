"""scripts/train.py as a user runs it: outputs, exit codes, no clobbering, resume, corrupt checkpoints."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRAIN = str(ROOT / "scripts" / "train.py")
SMALL = ["--config", "cartpole", "--set", "total_env_steps=12288", "--set", "log_every_env_steps=4096",
         "--set", "checkpoint_every_logs=1", "--quiet"]


def train(args, env, timeout=240):
    return subprocess.run([sys.executable, TRAIN, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    import os
    env = dict(os.environ)
    run = tmp_path_factory.mktemp("runs") / "r"
    out = train(SMALL + ["--run-dir", str(run)], env)
    assert out.returncode == 0, out.stderr[-3000:]
    return run


def test_run_directory_contents(finished_run):
    run = finished_run
    for name in ("config.json", "metrics.jsonl", "summary.json", "learning_curve.png"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["name"] == "cartpole" and cfg["total_env_steps"] == 12288 and cfg["ppo"]["lr"] == 5e-4
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        for key in ("env_steps", "wall_s", "steps_per_s", "episode_return", "policy_version"):
            assert key in row, key
    assert [r["env_steps"] for r in rows] == [4096, 8192, 12288]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["env_steps"] == 12288 and summary["steps_per_s"] > 0
    assert summary["episode_return"] > 0
    assert len(list((run / "checkpoints").glob("ckpt_*.msgpack"))) == 3   # keep_checkpoints=3


def test_resume_continues_env_steps(finished_run, subprocess_env, tmp_path):
    import shutil
    run = tmp_path / "resumed"
    shutil.copytree(finished_run, run)
    out = train(["--run-dir", str(run), "--resume", "--set", "total_env_steps=20480", "--quiet"], subprocess_env)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [4096, 8192, 12288, 16384, 20480]
    assert json.loads((run / "summary.json").read_text())["env_steps"] == 20480


def test_existing_run_dir_is_not_overwritten(finished_run, subprocess_env):
    before = (finished_run / "metrics.jsonl").read_text()
    out = train(SMALL + ["--run-dir", str(finished_run)], subprocess_env)
    assert out.returncode == 2
    assert "already exists" in out.stderr and "--overwrite" in out.stderr
    assert (finished_run / "metrics.jsonl").read_text() == before


@pytest.mark.parametrize("args, message", [
    (["--config", "nope"], "unknown config 'nope'"),
    (["--set", "env.id=gymnax/Nope-v0"], "unknown env 'gymnax/Nope-v0'"),
    (["--set", "ppo.lrr=0.1"], "unknown config key 'ppo.lrr'"),
    (["--set", "ppo.lr=fast"], "--set ppo.lr: expected float"),
    (["--set", "ppo.lr=-1"], "ppo.lr must be > 0"),
    (["--set", "ppo.gamma=1.5"], "ppo.gamma must be in [0, 1]"),
    (["--set", "env.num_envs=0"], "env.num_envs must be > 0"),
    (["--set", "ppo.minibatches=3"], "must divide into ppo.minibatches"),
    (["--set", "env.id=gym/CartPole-v1"], "fused mode needs a JAX env"),
    (["--set", "noequals"], "KEY=VALUE"),
    (["--bogus-flag"], "unrecognized arguments"),
    (["--resume"], "holds no run (no config.json)"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, subprocess_env, tmp_path):
    run = tmp_path / "never"
    out = train(args + ["--run-dir", str(run)], subprocess_env, timeout=60)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    assert message in lines[0], lines[0]
    assert not run.exists(), "bad input must write nothing"


def test_corrupt_checkpoint_is_a_clear_error(finished_run, subprocess_env, tmp_path):
    import shutil
    run = tmp_path / "corrupt"
    shutil.copytree(finished_run, run)
    latest = sorted((run / "checkpoints").glob("ckpt_*.msgpack"))[-1]
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    before = (run / "metrics.jsonl").read_text()
    out = train(["--run-dir", str(run), "--resume", "--quiet"], subprocess_env, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "truncated" in out.stderr or "corrupt" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert (run / "metrics.jsonl").read_text() == before


def test_list_configs(subprocess_env):
    out = train(["--list-configs"], subprocess_env, timeout=60)
    assert out.returncode == 0
    names = [line.split()[0] for line in out.stdout.strip().splitlines()]
    for name in ("cartpole", "brax_inverted_pendulum", "brax_ant", "gym_cartpole"):
        assert name in names


def test_resume_on_another_device_count(finished_run, subprocess_env, tmp_path):
    """A run checkpointed on 1 device continues on 4 (forced host devices): the learner comes back,
    env steps continue, and the 4 replicas start from the checkpointed parameters."""
    import shutil
    run = tmp_path / "four"
    shutil.copytree(finished_run, run)
    env = dict(subprocess_env)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
    out = train(["--run-dir", str(run), "--resume", "--set", "total_env_steps=16384", "--quiet"], env)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["devices"] == 4 and summary["env_steps"] == 16384
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [4096, 8192, 12288, 16384]
    assert rows[-1]["policy_version"] == 16
