"""A stuck rank never hangs the job, and SIGTERM saves like Ctrl-C (distributed mode, under mpirun).

- an actor whose env's `step` never returns, and a policy worker stopped with SIGSTOP: each rank's
  supervisor sees it silent past `distributed.stuck_after_s` and ends the job, naming the rank;
- a bad --run-dir ends every rank at once with one line and exit code 2;
- SIGTERM to mpirun (what batch schedulers send): trainer 0 saves a checkpoint, every rank says it
  was terminated, exit 143, and --resume continues from that checkpoint.
"""
import json
import os
import re
import signal
import time

from faults_helpers import FAST, MpiRun
from helpers import mpirun
from srljax.checkpoint import Checkpointer

DEADLINE = 6
ARGS = ["--config", "gym_cartpole", "--set", "distributed.stop_at_return=null", "--set", "total_env_steps=50000000",
        "--set", f"distributed.stuck_after_s={DEADLINE}", "--set", "env.num_envs=16", "--set", "rollout.rollout_len=16"] + FAST


def _first_metrics(run, tmp_path):
    run.wait_until(run.ranks, 120, "ranks.json")
    run.wait_until(lambda: (tmp_path / "run" / "metrics.jsonl").stat().st_size > 0, 120, "the first metrics line")


def test_an_actor_whose_env_hangs_ends_the_job_naming_it(tmp_path):
    os.environ["SRLJAX_TEST_HANG_RANK"] = "3"
    try:
        run = MpiRun(4, ARGS + ["--set", "env.id=gym/hang_env:HangingCartPole-v0"], tmp_path / "run",
                     tmp_path / "run.log")
    finally:
        del os.environ["SRLJAX_TEST_HANG_RANK"]
    rc = run.wait_exit(150)
    end = time.time()
    err = run.stderr()
    hung_at = float(re.search(r"HANGING_AT ([\d.]+)", err).group(1))
    assert rc == 1, (rc, err[-3000:])
    assert re.search(r"srljax: rank 3 \(actor 1, pid \d+\) is stuck: silent for \d+ s "
                     rf"\(limit distributed.stuck_after_s={DEADLINE}\)", err), err[-3000:]
    assert end - hung_at < DEADLINE + 10, f"the job ended {end - hung_at:.1f} s after the env hung"


def test_a_stopped_policy_worker_ends_the_job_naming_it(tmp_path):
    run = MpiRun(4, ARGS, tmp_path / "run", tmp_path / "run.log")
    _first_metrics(run, tmp_path)
    entry = next(r for r in run.ranks() if r["rank"] == 1)
    t0 = time.monotonic()
    os.kill(entry["pid"], signal.SIGSTOP)
    rc = run.wait_exit(DEADLINE + 30)
    seconds = time.monotonic() - t0
    err = run.stderr()
    assert rc == 1, (rc, err[-3000:])
    assert f"srljax: rank 1 (policy 0, pid {entry['pid']}) is stuck: silent for" in err, err[-3000:]
    assert seconds < DEADLINE + 10, seconds
    assert len(re.findall(r"is stuck", err)) == 1, err[-3000:]        # only the stopped rank


def test_a_bad_run_dir_ends_every_rank_at_once_with_exit_2(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for bad, words in [(not_a_dir, "is a file, not a directory"), (not_a_dir / "run", "cannot be written")]:
        rc, out, err, seconds = mpirun(4, ["scripts/train.py", "--config", "gym_cartpole", "--run-dir", bad],
                                       timeout=60)
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2 and seconds < 10 + 5, (rc, seconds, err)     # start-up included
        assert len(lines) == 1 and words in lines[0] and "Traceback" not in err, err
        assert not_a_dir.read_text() == "x"


def test_sigterm_saves_a_checkpoint_and_resume_continues_from_it(tmp_path):
    run = MpiRun(4, ARGS, tmp_path / "run", tmp_path / "run.log")
    _first_metrics(run, tmp_path)
    time.sleep(1.0)
    t0 = time.monotonic()
    os.kill(run.proc.pid, signal.SIGTERM)
    rc = run.wait_exit(30)
    err = run.stderr()
    assert rc == 143, (rc, err[-3000:])
    assert time.monotonic() - t0 < 15, err[-2000:]
    assert re.search(r"srljax: rank \d \((trainer|policy|actor) \d\) terminated \(SIGTERM\)", err), err[-2000:]
    assert "failed" not in err and "Traceback" not in err, err[-2000:]
    saved = re.search(r"srljax: checkpoint saved at update (\d+), ([\d,]+) env steps", err)
    assert saved, err[-2000:]
    _, header = Checkpointer(tmp_path / "run").restore(Checkpointer(tmp_path / "run").latest())
    assert header["step"] == int(saved.group(1))
    at = header["meta"]["env_steps"]
    assert at == int(saved.group(2).replace(",", ""))
    rc, out, err, _ = mpirun(4, ["scripts/train.py", "--run-dir", tmp_path / "run", "--resume", "--quiet",
                                 "--set", f"total_env_steps={at + 4000}"], timeout=150)
    assert rc == 0, err[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["resumed_from_env_steps"] == at and summary["env_steps"] >= at + 4000
