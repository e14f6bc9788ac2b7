"""`--sweep KEY=V1,V2,...`: float settings varied inside one program, times `--seeds`; member (s, k)
equals the single run of setting s and seed + k; the summary aggregates each setting over its
seeds; a key that changes shapes or the program's structure is one line, exit 2."""
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from srljax import config, presets
from srljax.dataflow.fused.rollout import FusedTrainer
from srljax.errors import UserError

TRAIN = str(Path(__file__).resolve().parents[2] / "scripts" / "train.py")


def test_a_swept_member_equals_the_single_run_of_its_setting():
    base = config.override(presets.get("cartpole"), {"env.num_envs": 4, "network.hidden": [16, 16]})
    pop = FusedTrainer(config.override(base, {"seeds": 2, "sweep": {"ppo.lr": [1e-3, 1e-4], "ppo.ent_coef": [0.0, 0.05]}}))
    # member m: setting m // 2 (the first key slowest), seed index m % 2
    assert pop.members == 8 and pop.labels[5] == {"member": 5, "seed": 1, "ppo.lr": 1e-4, "ppo.ent_coef": 0.0}
    fs, row = pop.chunk(pop.init(0), 6)
    assert [(m["ppo.lr"], m["ppo.ent_coef"], m["seed"]) for m in row["members"]][:4] == [
        (1e-3, 0.0, 0), (1e-3, 0.0, 1), (1e-3, 0.05, 0), (1e-3, 0.05, 1)]
    for m in (1, 6):
        label = pop.labels[m]
        one = FusedTrainer(config.override(base, {"ppo.lr": label["ppo.lr"], "ppo.ent_coef": label["ppo.ent_coef"]}))
        single, _ = one.chunk(one.init(label["seed"]), 6)
        a = jax.tree.leaves(jax.tree.map(lambda x: np.asarray(x)[0, m], fs.learner.params))
        b = jax.tree.leaves(jax.tree.map(lambda x: np.asarray(x)[0], single.learner.params))
        assert max(float(np.max(np.abs(x - y))) for x, y in zip(a, b)) < 1e-5, label
    lr_hi = jax.tree.leaves(jax.tree.map(lambda x: np.asarray(x)[0, 0], fs.learner.params))
    lr_lo = jax.tree.leaves(jax.tree.map(lambda x: np.asarray(x)[0, 4], fs.learner.params))      # same seed
    assert max(float(np.max(np.abs(x - y))) for x, y in zip(lr_hi, lr_lo)) > 1e-4


def test_the_summary_aggregates_each_setting_and_names_the_best(tmp_path):
    run = tmp_path / "sweep"
    cmd = [sys.executable, TRAIN, "--config", "cartpole", "--sweep", "ppo.lr=1e-2,1e-4", "--seeds", "2",
           "--set", "total_env_steps=16384", "--set", "log_every_env_steps=8192", "--set", "env.num_envs=4",
           "--set", "network.hidden=[16,16]", "--run-dir", str(run)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    s = json.loads((run / "summary.json").read_text())
    assert s["members"] == 4 and s["seeds"] == 2 and len(s["sweep_results"]) == 2
    for res, lr in zip(s["sweep_results"], (1e-2, 1e-4)):
        assert res["setting"] == {"ppo.lr": lr}
        np.testing.assert_allclose(res["episode_return_mean"], np.mean(res["episode_return_members"]))
    assert s["best_setting"] == max(s["sweep_results"], key=lambda r: r["episode_return_iqm"])["setting"]
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert [m["ppo.lr"] for m in row["members"]] == [1e-2, 1e-2, 1e-4, 1e-4]


@pytest.mark.parametrize("sweep,message", [
    ("ppo.epochs=2,4", "ppo.epochs (int) changes array shapes or the program's structure"),
    ("ppo.normalize_obs=0,1", "ppo.normalize_obs (bool) changes array shapes"),
    ("ppo.lr=fast", "--sweep expects KEY=V1,V2,... with numbers"),
    ("ppo.nope=1,2", "sweep: unknown config key 'ppo.nope'"),
])
def test_a_sweep_of_a_structural_key_is_one_line_exit_2(tmp_path, sweep, message):
    out = subprocess.run([sys.executable, TRAIN, "--config", "cartpole", "--sweep", sweep,
                          "--run-dir", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert not (tmp_path / "r").exists()


def test_a_float_the_program_needs_as_a_number_is_refused_before_anything_runs():
    """The trace of the swept programs is the check (`population.check_traceable`): a swept value
    that reaches Python control flow fails it, and that is one line naming the key."""
    from srljax.dataflow.fused.population import check_traceable
    cfg = config.override(presets.get("cartpole"), {"sweep": {"ppo.clip_eps": [0.1, 0.2]}})
    with pytest.raises(UserError, match="sweep: ppo.clip_eps: the program needs it as a fixed number"):
        check_traceable(cfg, lambda: jax.eval_shape(lambda x: 1.0 if x > 0 else 0.0, 1.0))
    assert FusedTrainer(cfg).members == 2                              # PPO's clip range traces: accepted
