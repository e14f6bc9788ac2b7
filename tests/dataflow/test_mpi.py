"""MPI end to end: each test starts `mpirun` as a subprocess with a timeout, so a hang fails it."""
import json
import re
import time

import pytest

from helpers import HERE, mpirun

RUN = ["-m", "srljax", "--print-summary"]
NO_DIR = ["--no-run-dir"]
SMALL = ["--set", "env.num_envs=16", "--set", "rollout.rollout_len=16", "--set", "distributed.log_interval_s=0.2"]


def _summary(stdout):
    lines = [l for l in stdout.splitlines() if l.startswith("{")]
    assert lines, stdout
    return json.loads(lines[-1])


def test_mpi_streams_end_to_end():
    rc, out, err, _ = mpirun(3, [HERE / "mpi_stream_check.py"], timeout=60)
    assert rc == 0, err
    assert sorted(re.findall(r"OK (\d)", out)) == ["0", "1", "2"]


def test_layout_that_does_not_fit_exits_2_with_one_line():
    rc, out, err, _ = mpirun(2, RUN + NO_DIR + ["--config", "gym_cartpole"], timeout=60)
    assert rc == 2
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "rank layout does not fit -n 2" in lines[0] and "Traceback" not in err


def test_failing_actor_ends_the_job_promptly_naming_rank_and_role():
    args = RUN + NO_DIR + ["--config", "gym_cartpole", "--set", "env.id=gym/failing_env:FailingCartPole-v0"] + SMALL
    rc, out, err, _ = mpirun(4, args, timeout=90, SRLJAX_TEST_FAIL_RANK=3)
    end = time.time()
    assert rc != 0
    assert "srljax: rank 3 (actor 1) failed: RuntimeError: injected actor failure" in err, err[-3000:]
    failed_at = float(re.search(r"FAILING_AT ([\d.]+)", err).group(1))
    assert end - failed_at < 10.0, f"the job took {end - failed_at:.1f} s to end after the failure"


def test_two_trainers_keep_identical_parameters(tmp_path):
    args = RUN + ["--config", "gym_cartpole", "--set", "distributed.trainers=2", "--set",
                  "distributed.policy_workers=0", "--set", "distributed.inline_inference=true",
                  "--set", "distributed.stop_at_return=null", "--set", "total_env_steps=5000",
                  "--set", "ppo.normalize_obs=true", "--set", "ppo.normalize_value=true",
                  "--run-dir", tmp_path / "run"] + SMALL
    rc, out, err, _ = mpirun(4, args, timeout=150)
    assert rc == 0, err[-3000:]
    summary = _summary(out)
    digests = summary["trainer_params_digests"]
    assert summary["trainers"] == 2 and len(digests) == 2
    assert summary["updates"] >= 4
    assert digests[0] == digests[1], digests       # parameters and normaliser statistics
    # The totals are over both trainers: every posted step is counted once.
    assert summary["env_steps"] >= 5000
    assert (tmp_path / "run" / "summary.json").is_file() and (tmp_path / "run" / "metrics.jsonl").is_file()


def test_buffer_and_vtrace_layout_runs_and_stops_cleanly():
    args = RUN + NO_DIR + ["--config", "gym_cartpole", "--set", "distributed.buffers=1", "--set",
                  "algorithm.name=vtrace", "--set", "ppo.epochs=1", "--set", "ppo.minibatches=1",
                  "--set", "distributed.stop_at_return=null", "--set", "total_env_steps=6000"] + SMALL
    rc, out, err, _ = mpirun(5, args, timeout=150)
    assert rc == 0, err[-3000:]
    summary = _summary(out)
    assert (summary["buffers"], summary["actors"], summary["algorithm"]) == (1, 2, "vtrace")
    assert summary["env_steps"] >= 6000 and summary["updates"] >= 5


def test_two_trainers_merge_observation_statistics_exactly():
    """normalize_obs with 2 trainers: statistics of both batches, identical on both trainers."""
    script = HERE / "obs_norm_check.py"
    rc, out, err, _ = mpirun(2, [script], timeout=90)
    assert rc == 0, err[-3000:]
    assert out.count("OK") == 2


def test_uncaught_exception_outside_workers_does_not_hang_the_job():
    rc, out, err, seconds = mpirun(3, [HERE / "uncaught_check.py"], timeout=60)
    assert rc != 0 and seconds < 30
    assert "srljax: rank 0 (uncaught) failed: RuntimeError: uncaught on rank 0" in err
