"""Several runs in one program (`--seeds N`, `dataflow.fused.population`): member i computes what the
single run of seed + i computes (PPO and DQN), and a population run writes per-member rows, one
TensorBoard run per member, the aggregate over members, resumes exactly, and plays any member."""
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import srljax
from srljax import config, presets
from srljax.dataflow.fused.replay import FusedReplayTrainer
from srljax.dataflow.fused.rollout import FusedTrainer

TRAIN = str(Path(__file__).resolve().parents[2] / "scripts" / "train.py")

SMALL = {"env.num_envs": 4, "network.hidden": [16, 16]}


def _max_diff(a, b):
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("preset,trainer,units", [("cartpole", FusedTrainer, 10),
                                                   ("cartpole_dqn", FusedReplayTrainer, 400)])
def test_each_member_equals_the_single_run_of_its_seed(preset, trainer, units):
    """`--seeds 4` from seed 3: member i's parameters after 10 PPO updates (400 DQN env-batch
    steps, past learning_starts) are those of the single run of seed 3 + i."""
    base = config.override(presets.get(preset), SMALL)
    pop = trainer(config.override(base, {"seeds": 4}))
    fs, row = pop.chunk(pop.init(3), units)
    assert [m["seed"] for m in row["members"]] == [3, 4, 5, 6]
    one = trainer(base)
    for i in range(4):
        single, single_row = one.chunk(one.init(3 + i), units)
        member = jax.tree.map(lambda x: np.asarray(x)[0, i], fs.learner.params)
        assert _max_diff(member, jax.tree.map(lambda x: np.asarray(x)[0], single.learner.params)) < 1e-5, i
        assert _max_diff(member, jax.tree.map(lambda x: np.asarray(x)[0], fs.learner.params)) > 0 or i == 0
        np.testing.assert_allclose(row["episode_return_members"][i], single_row["episode_return"], rtol=1e-5)
    moved = _max_diff(jax.tree.map(lambda x: np.asarray(x)[0, 0], fs.learner.params),
                      jax.tree.map(lambda x: np.asarray(x)[0], one.init(3).learner.params))
    assert moved > 1e-4                                              # the members did learn


def test_a_population_run_writes_its_members_resumes_exactly_and_plays_any_member(tmp_path):
    overrides = {**SMALL, "total_env_steps": 4096, "log_every_env_steps": 1024, "checkpoint_every_logs": 1,
                 "ppo.anneal_lr": False}              # the schedule would follow the budget
    whole = srljax.train("cartpole", overrides=overrides, seeds=3, run_dir=str(tmp_path / "whole"))
    s = whole.summary
    assert s["seeds"] == 3 and len(s["episode_return_members"]) == 3
    x = np.array(s["episode_return_members"])
    assert s["episode_return_mean"] == pytest.approx(x.mean()) and s["episode_return"] == pytest.approx(x.mean())
    assert s["episode_return_mean_ci95"][0] <= x.mean() <= s["episode_return_mean_ci95"][1]
    assert x.min() <= s["episode_return_iqm"] <= x.max() and s["best_member"] == int(np.argmax(x))
    rows = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(len(r["members"]) == 3 and len(r["episode_return_members"]) == 3 for r in rows)
    assert [m["member"] for m in rows[-1]["members"]] == [0, 1, 2]
    for i in range(3):                                     # one TensorBoard run per member
        assert list((tmp_path / "whole" / "members" / str(i)).glob("events.out.tfevents.*")), i
    assert (tmp_path / "whole" / "learning_curve.png").stat().st_size > 1000
    assert np.shape(jax.tree.leaves(whole.learner_state.params)[0])[0] == 3
    np.testing.assert_array_equal(jax.tree.leaves(whole.member(2).params)[0], jax.tree.leaves(whole.learner_state.params)[0][2])

    # half, then --resume to the whole budget: the same parameters as the uninterrupted run
    srljax.train("cartpole", overrides={**overrides, "total_env_steps": 2048}, seeds=3, run_dir=str(tmp_path / "half"))
    resumed = srljax.train("cartpole", overrides=overrides, seeds=3, run_dir=str(tmp_path / "half"), resume=True)
    assert _max_diff(resumed.learner_state.params, whole.learner_state.params) == 0.0
    assert resumed.summary["episode_return_members"] == s["episode_return_members"]

    def evaluate(*extra):
        return subprocess.run([sys.executable, "-m", "srljax.evaluate", "--run-dir", str(tmp_path / "whole"),
                               "--episodes", "2", *extra], capture_output=True, text=True, timeout=300)

    best = evaluate()
    assert best.returncode == 0, best.stderr[-2000:]
    assert json.loads(best.stdout)["member"] == s["best_member"]
    other = evaluate("--member", "1")
    assert other.returncode == 0 and json.loads(other.stdout)["member_seed"] == 1, other.stderr[-2000:]
    bad = evaluate("--member", "3")
    assert bad.returncode == 2 and "members 0..2" in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr


def test_seeds_need_fused_mode_and_a_positive_count():
    from srljax.errors import UserError
    with pytest.raises(UserError, match="seeds must be > 0"):
        config.validate(config.override(presets.get("cartpole"), {"seeds": 0}))
    with pytest.raises(UserError, match="need fused mode"):
        config.validate(config.override(presets.get("gym_cartpole"), {"seeds": 2}))


def test_a_population_survives_sigterm_and_resumes(subprocess_env, tmp_path):
    """SIGTERM mid-run: a checkpoint of every member, exit 143; `--resume` finishes the run; a resume
    that asks for another population size is one line, exit 2, and changes no file."""
    import re
    import signal
    import time
    train = [sys.executable, TRAIN]
    run = tmp_path / "pop"
    args = ["--config", "cartpole", "--seeds", "2", "--set", "total_env_steps=50000000", "--set",
            "log_every_env_steps=4096", "--set", "checkpoint_every_logs=100000", "--set", "env.num_envs=4",
            "--run-dir", str(run), "--quiet"]
    proc = subprocess.Popen(train + args, env=subprocess_env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not ((run / "metrics.jsonl").is_file() and len((run / "metrics.jsonl").read_text().splitlines()) >= 2):
        assert time.monotonic() < deadline and proc.poll() is None, "no metrics"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-3000:]
    saved = re.search(r"checkpoint saved at update (\d+), ([\d,]+) env steps", err)
    assert saved and "Traceback" not in err, err[-3000:]
    at = int(saved.group(2).replace(",", ""))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    other = subprocess.run(train + ["--run-dir", str(run), "--resume", "--seeds", "3", "--quiet"], env=subprocess_env,
                           capture_output=True, text=True, timeout=300)
    assert other.returncode == 2 and other.stderr.count("\n") == 1, other.stderr[-3000:]
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    out = subprocess.run(train + ["--run-dir", str(run), "--resume", "--set", f"total_env_steps={at + 8192}", "--quiet"],
                         env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from_env_steps"] == at and summary["env_steps"] == at + 8192
    assert len(summary["episode_return_members"]) == 2
