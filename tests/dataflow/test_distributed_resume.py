"""Distributed-mode checkpoints and --resume: env steps, policy version and metrics continue from
the latest checkpoint; a run resumes on a different number of trainers; a corrupt checkpoint is
one line and exit code 2 with nothing written."""
import json

import pytest

from faults_helpers import FAST, MpiRun
from helpers import mpirun
from srljax import config as C
from srljax import presets
from srljax.checkpoint import Checkpointer
from srljax.errors import UserError
from srljax.run import run as run_config

SMALL = {"env.num_envs": 16, "rollout.rollout_len": 16, "distributed.stop_at_return": None,
         "distributed.log_interval_s": 0.05, "checkpoint_every_logs": 2}


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_resume_in_one_process_continues_steps_version_and_metrics(tmp_path):
    run = tmp_path / "run"
    cfg = C.validate(C.override(presets.get("gym_cartpole"), {**SMALL, "total_env_steps": 6000}))
    assert run_config(cfg, run_dir=run).summary is not None
    ckpt = Checkpointer(run)
    assert len(ckpt.list()) >= 2
    # As if the run had been killed after the second-last checkpoint: rows past it are redone.
    ckpt.latest().unlink()
    _, header = ckpt.restore(ckpt.latest())
    at, version = header["meta"]["env_steps"], header["meta"]["version"]
    assert any(r["env_steps"] > at for r in _rows(run))

    longer = C.override(cfg, {"total_env_steps": 12000})
    assert run_config(longer, run_dir=run, resume=True).summary is not None
    summary = json.loads((run / "summary.json").read_text())
    rows = _rows(run)
    steps = [r["env_steps"] for r in rows]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert summary["resumed_from_env_steps"] == at and summary["env_steps"] >= 12000
    after = [r for r in rows if r["env_steps"] > at]
    assert after[0]["policy_version"] == version + 1 or after[0]["policy_version"] > version
    assert summary["updates"] == summary["policy_version"] > version
    assert Checkpointer(run).read_header(Checkpointer(run).latest())["meta"]["env_steps"] == summary["env_steps"]


def test_resume_without_a_checkpoint_is_a_user_error(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    cfg = C.validate(C.override(presets.get("gym_cartpole"), SMALL))
    (run / "config.json").write_text(json.dumps(C.to_dict(cfg)))
    with pytest.raises(UserError, match="has no checkpoint to resume from"):
        run_config(cfg, run_dir=run, resume=True)
    assert sorted(p.name for p in run.iterdir()) == ["config.json"]


def test_mpi_resume_on_two_trainers_from_one_and_corrupt_checkpoint(tmp_path):
    run = tmp_path / "run"
    sets = ["--set", "distributed.stop_at_return=null", "--set", "env.num_envs=16", "--set", "rollout.rollout_len=16"]
    first = MpiRun(4, ["--config", "gym_cartpole", "--quiet", "--set", "total_env_steps=4000"] + sets + FAST,
                   run, tmp_path / "first.log")
    assert first.wait_exit(150) == 0, first.stderr()[-3000:]
    at = json.loads((run / "summary.json").read_text())["env_steps"]

    rc, out, err, _ = mpirun(5, ["scripts/train.py", "--run-dir", run, "--resume", "--quiet",
                                 "--set", "distributed.trainers=2", "--set", "total_env_steps=8000"], timeout=150)
    assert rc == 0, err[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["trainers"] == 2 and summary["resumed_from_env_steps"] == at
    assert summary["env_steps"] >= 8000
    assert len(set(summary["trainer_params_digests"])) == 1       # both trainers continued from one state

    latest = Checkpointer(run).latest()
    latest.write_bytes(latest.read_bytes()[:100])
    before = (run / "metrics.jsonl").read_text()
    rc, out, err, _ = mpirun(5, ["scripts/train.py", "--run-dir", run, "--resume", "--quiet"], timeout=90)
    assert rc == 2, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("srljax: error: checkpoint") and ("truncated" in lines[0] or "corrupt" in lines[0])
    assert (run / "metrics.jsonl").read_text() == before
