"""Faults under mpirun: a rank killed with SIGKILL ends the job promptly, named by rank and role;
after a killed trainer the last checkpoint is intact and --resume continues from it to the target.

Each run is `mpirun -n 4 python scripts/train.py --config gym_cartpole` (trainer, policy worker,
two actors) started in its own session with a hard timeout."""
import json
import re

import pytest

from faults_helpers import FAST, MpiRun, kill_rank
from srljax.checkpoint import Checkpointer

ARGS = ["--config", "gym_cartpole", "--quiet"] + FAST


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_killed_trainer_ends_the_job_and_the_run_resumes_to_the_target(tmp_path):
    run_dir = tmp_path / "run"
    run = MpiRun(4, ARGS, run_dir, tmp_path / "first.log")
    run.wait_until(run.ranks, 120, "ranks.json")
    run.wait_until(run.checkpoints, 120, "first checkpoint")
    role, pid, seconds, rc = kill_rank(run, 0)
    err = run.stderr()
    assert role == "trainer 0"
    assert rc != 0 and seconds < 10.0, (rc, seconds, err[-2000:])
    assert f"srljax: rank 0 (trainer 0, pid {pid}) was killed by signal 9 (SIGKILL)" in err, err[-2000:]
    assert not (run_dir / "summary.json").exists()

    ckpt = Checkpointer(run_dir)
    state, header = ckpt.restore(ckpt.latest())        # intact: reads back whole
    at = header["meta"]["env_steps"]
    assert at > 0 and header["meta"]["version"] == header["step"] > 0

    resumed = MpiRun(4, ["--resume", "--quiet"], run_dir, tmp_path / "resume.log")
    assert resumed.wait_exit(240) == 0, resumed.stderr()[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["resumed_from_env_steps"] == at
    assert summary["env_steps"] > at and summary["updates"] > header["step"]
    assert summary["episode_return"] >= 475.0                    # the preset's stop_at_return
    steps = [r["env_steps"] for r in _rows(run_dir)]
    assert steps == sorted(steps) and len(set(steps)) == len(steps), steps   # no row from before is redone twice
    versions = [r["policy_version"] for r in _rows(run_dir) if r["env_steps"] > at]
    assert versions[0] > header["meta"]["version"]               # the policy version continues too


@pytest.mark.parametrize("rank,role", [(1, "policy 0"), (3, "actor 1")])
def test_killed_policy_worker_or_actor_ends_the_job_naming_it(tmp_path, rank, role):
    run = MpiRun(4, ARGS, tmp_path / "run", tmp_path / "run.log")
    run.wait_until(run.ranks, 120, "ranks.json")
    run.wait_until(lambda: (tmp_path / "run" / "metrics.jsonl").stat().st_size > 0, 120, "the first metrics line")
    got_role, pid, seconds, rc = kill_rank(run, rank)
    err = run.stderr()
    assert got_role == role
    assert rc != 0 and seconds < 10.0, (rc, seconds, err[-2000:])
    line = f"srljax: rank {rank} ({role}, pid {pid}) was killed by signal 9 (SIGKILL)"
    assert line in err, err[-2000:]
    # Only the killed rank is reported: the others were ended by mpirun, not reported as killed.
    assert len(re.findall(r"was killed by signal", err)) == 1, err[-2000:]


def test_ctrl_c_ends_every_rank_as_interrupted_not_failed(tmp_path):
    """SIGINT to mpirun (Ctrl-C) reaches every rank: the job ends promptly with the ranks saying
    they were interrupted, nothing reads like a failure, and trainer 0 checkpoints first."""
    import os
    import signal
    import time
    run = MpiRun(4, ARGS, tmp_path / "run", tmp_path / "run.log")
    run.wait_until(run.ranks, 120, "ranks.json")
    run.wait_until(lambda: (tmp_path / "run" / "metrics.jsonl").stat().st_size > 0, 120, "the first metrics line")
    t0 = time.monotonic()
    os.kill(run.proc.pid, signal.SIGINT)
    rc = run.wait_exit(30)
    err = run.stderr()
    assert rc != 0 and time.monotonic() - t0 < 10.0, (rc, err[-2000:])
    assert re.search(r"srljax: rank \d \((trainer|policy|actor) \d\) interrupted", err), err[-2000:]
    assert "failed" not in err and "Traceback" not in err, err[-2000:]
    # trainer 0 saved what it had learned before the job ended: the newest checkpoint is that update
    saved = re.search(r"srljax: checkpoint saved at update (\d+), ([\d,]+) env steps", err)
    assert saved, err[-2000:]
    ckpt = Checkpointer(tmp_path / "run")
    _, header = ckpt.restore(ckpt.latest())
    assert header["step"] == int(saved.group(1))
    assert header["meta"]["env_steps"] == int(saved.group(2).replace(",", ""))
