"""Bad input is one line and exit code 2, and changes no file of an existing run directory, even a
failed --resume; damaged run files are read tolerantly or refused with one line; SIGTERM and
Ctrl-C of a fused run save a checkpoint that --resume continues from."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRAIN = str(ROOT / "scripts" / "train.py")
SMALL = ["--config", "cartpole", "--set", "total_env_steps=8192", "--set", "log_every_env_steps=4096",
         "--set", "checkpoint_every_logs=1", "--quiet"]


def train(args, env, timeout=120):
    return subprocess.run([sys.executable, TRAIN, *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def snapshot(run: Path):
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def one_line(out, words):
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert words in lines[0], lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = tmp_path_factory.mktemp("runs") / "r"
    out = train(SMALL + ["--run-dir", run], env)
    assert out.returncode == 0, out.stderr[-3000:]
    return run


@pytest.mark.parametrize("sets, words", [
    (["network.hidden=[32]"], "checkpointed learner has arrays of shape"),   # a resume that does not fit
    (["env.kwargs={\"nosuch\": 1}"], "env.kwargs ['nosuch'] do not fit env 'gymnax/CartPole-v1'"),
    (["total_env_steps=1e30"], "total_env_steps must be at most"),
])
def test_a_failed_resume_changes_no_file(finished, sets, words, subprocess_env):
    before = snapshot(finished)
    out = train(["--run-dir", finished, "--resume"] + [a for s in sets for a in ("--set", s)], subprocess_env)
    one_line(out, words)
    assert snapshot(finished) == before


def test_a_failed_distributed_resume_changes_no_file(subprocess_env, tmp_path):
    run = tmp_path / "dist"
    out = train(["--config", "gym_cartpole", "--set", "total_env_steps=4000", "--set", "distributed.stop_at_return=null",
                 "--set", "env.num_envs=16", "--set", "rollout.rollout_len=16", "--run-dir", run, "--quiet"], subprocess_env)
    assert out.returncode == 0, out.stderr[-3000:]
    before = snapshot(run)
    one_line(train(["--run-dir", run, "--resume", "--set", "network.hidden=[32]"], subprocess_env),
             "checkpointed learner has arrays of shape")
    assert snapshot(run) == before


@pytest.mark.parametrize("content, words", [("[]", "config.json: a config must be a JSON object"),
                                            ("null", "config.json: a config must be a JSON object"),
                                            ("{\"ppo\": [1]", "is not valid JSON")])
def test_a_damaged_config_json_is_one_line_naming_the_file(finished, content, words, subprocess_env, tmp_path):
    import shutil
    run = tmp_path / "damaged"
    shutil.copytree(finished, run)
    (run / "config.json").write_text(content)
    before = snapshot(run)
    out = train(["--run-dir", run, "--resume"], subprocess_env)
    one_line(out, words)
    assert str(run / "config.json") in out.stderr
    assert snapshot(run) == before


def test_a_resumed_config_with_a_bad_env_kwarg_is_one_line(finished, subprocess_env, tmp_path):
    import shutil
    run = tmp_path / "kw"
    shutil.copytree(finished, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["env"]["kwargs"] = {"gravityy": 9.8}
    (run / "config.json").write_text(json.dumps(cfg))
    before = snapshot(run)
    one_line(train(["--run-dir", run, "--resume"], subprocess_env), "env.kwargs ['gravityy'] do not fit")
    assert snapshot(run) == before


def test_a_torn_last_metrics_line_is_dropped_on_resume(finished, subprocess_env, tmp_path):
    import shutil
    run = tmp_path / "torn"
    shutil.copytree(finished, run)
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text + text.splitlines()[-1][:25])      # the row being written
    out = train(["--run-dir", run, "--resume", "--set", "total_env_steps=12288", "--quiet"], subprocess_env)
    assert out.returncode == 0, out.stderr[-3000:]
    steps = [json.loads(line)["env_steps"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4096, 8192, 12288]


@pytest.mark.parametrize("args, words", [
    (["--set", "env.kwargs={\"nosuch\": 1}"], "do not fit env 'gymnax/CartPole-v1'"),
    (["--config", "gym_cartpole", "--set", "env.kwargs={\"nosuch\": 1}"], "do not fit env 'gym/CartPole-v1'"),
    (["--set", "total_env_steps=1e30"], "total_env_steps must be at most"),
    (["--config", "gym_cartpole", "--set", "env.num_envs=15"], "must split evenly over distributed.ring_size"),
    (["--set", "cpu_threads=-1"], "cpu_threads must be >= 0"),
    (["--set", "network.core=rnn"], "network.core must be one of feedforward, lstm, gru, got 'rnn'"),
    (["--config", "gym_cartpole", "--set", "network.core=lstm"], "network.core=lstm runs in fused mode (JAX envs)"),
])
def test_bad_input_found_after_parsing_writes_nothing(args, words, subprocess_env, tmp_path):
    run = tmp_path / "new"
    one_line(train(args + ["--run-dir", run], subprocess_env), words)
    assert not run.exists()


def test_num_envs_that_do_not_split_over_devices_write_nothing(subprocess_env, tmp_path):
    env = dict(subprocess_env, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    run = tmp_path / "new"
    one_line(train(["--set", "env.num_envs=6", "--run-dir", run], env), "does not split evenly over 4 devices")
    assert not run.exists()


def test_a_run_dir_that_cannot_be_used_is_one_line(subprocess_env, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    one_line(train(SMALL + ["--run-dir", f], subprocess_env), "is a file, not a directory")
    one_line(train(SMALL + ["--run-dir", f / "run"], subprocess_env), "cannot be written")
    assert f.read_text() == "x"


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_or_ctrl_c_of_a_fused_run_saves_a_checkpoint_that_resume_continues(sig, code, subprocess_env,
                                                                                   tmp_path):
    run = tmp_path / "long"
    args = ["--config", "cartpole", "--set", "total_env_steps=50000000", "--set", "log_every_env_steps=4096",
            "--set", "checkpoint_every_logs=100000", "--run-dir", run, "--quiet"]
    proc = subprocess.Popen([sys.executable, TRAIN, *map(str, args)], env=subprocess_env, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while not ((run / "metrics.jsonl").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) >= 3):
        assert time.monotonic() < deadline and proc.poll() is None, "no metrics"
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err[-3000:]
    saved = re.search(r"srljax: checkpoint saved at update (\d+), ([\d,]+) env steps", err)
    assert saved and "Traceback" not in err, err[-3000:]
    at = int(saved.group(2).replace(",", ""))
    assert at >= 3 * 4096
    out = train(["--run-dir", run, "--resume", "--set", f"total_env_steps={at + 8192}", "--quiet"], subprocess_env)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from_env_steps"] == at and summary["env_steps"] == at + 8192


def test_a_run_written_with_the_old_ppo_rollout_keys_resumes(finished, subprocess_env, tmp_path):
    """A config.json from before the `rollout` section (ppo.rollout_len, ppo.chunk_len,
    ppo.max_nonfinite_updates) resumes, and the run's config.json is then written with today's keys."""
    import shutil
    run = tmp_path / "old"
    shutil.copytree(finished, run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["ppo"].update(cfg.pop("rollout"))
    cfg["ppo"]["rollout_len"] = 128
    (run / "config.json").write_text(json.dumps(cfg))
    out = train(["--run-dir", run, "--resume", "--set", "total_env_steps=12288", "--quiet"], subprocess_env)
    assert out.returncode == 0, out.stderr[-3000:]
    steps = [json.loads(line)["env_steps"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4096, 8192, 12288]
    saved = json.loads((run / "config.json").read_text())
    assert saved["rollout"]["rollout_len"] == 128 and "rollout_len" not in saved["ppo"]
