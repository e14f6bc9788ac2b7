"""Population-based training (`pbt.interval`, `dataflow.fused.pbt`): an exploit step copies the best
members' learner state into the worst exactly, explore multiplies their swept settings by one of
the factors, the programs take the new values without a new compile, a PBT run resumes exactly
(its settings travel in the checkpoints), and bad PBT settings are one line, exit 2."""
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import srljax
from srljax import config, presets
from srljax.dataflow.fused.pbt import PBT
from srljax.dataflow.fused.rollout import FusedTrainer

TRAIN = str(Path(__file__).resolve().parents[2] / "scripts" / "train.py")
SMALL = {"env.num_envs": 4, "network.hidden": [16, 16], "seeds": 2, "sweep": {"ppo.lr": [1e-2, 1e-4]}}


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_exploit_copies_the_best_and_explore_perturbs_its_settings_without_a_new_compile():
    cfg = config.override(presets.get("cartpole"), {**SMALL, "pbt.interval": 1, "pbt.fraction": 0.5})
    tr = FusedTrainer(cfg)
    fs, _ = tr.chunk(tr.init(0), 2)
    lr = [m["ppo.lr"] for m in tr.labels]                          # [1e-2, 1e-2, 1e-4, 1e-4]
    before, ring_before = _leaves(fs.learner), np.asarray(fs.ring_count).copy()
    pbt = PBT(tr)
    new, record = pbt.step(fs, [1.0, 4.0, 3.0, 2.0], 1)              # worst: members 0 and 3; best: 1 and 2
    copies = {c["member"]: c for c in record["copies"]}
    assert sorted(copies) == [0, 3] and record["step"] == 1
    after = _leaves(new.learner)
    for w, c in copies.items():
        b = c["from"]
        assert b in (1, 2) and c["return"] == [1.0, 4.0, 3.0, 2.0][w]
        for x, y in zip(after, before):                            # every learner array, exactly
            np.testing.assert_array_equal(x[:, w], y[:, b])
        assert c["ppo.lr"] in {float(f"{lr[b] * f:.6g}") for f in (0.8, 1.25)}, c
        assert c["factors"]["ppo.lr"] * lr[b] == pytest.approx(c["ppo.lr"])
        assert tr.labels[w]["ppo.lr"] == c["ppo.lr"] and tr.sweep_args[0]["ppo.lr"][0, w] == np.float32(c["ppo.lr"])
        assert np.asarray(new.ring_count)[0, w] == 0                # ranked next on its own episodes
    for i in (1, 2):                                               # the others keep theirs
        assert all(np.array_equal(x[:, i], y[:, i]) for x, y in zip(after, before))
        assert tr.labels[i]["ppo.lr"] == lr[i] and np.asarray(new.ring_count)[0, i] == ring_before[0, i]
    assert pbt.meta()["pbt"]["values"]["ppo.lr"] == [m["ppo.lr"] for m in tr.labels]
    compiled = tr._chunk._cache_size()
    _, row = tr.chunk(new, 1)                                      # the new values, the same program
    assert tr._chunk._cache_size() == compiled
    assert [m["ppo.lr"] for m in row["members"]] == [m["ppo.lr"] for m in tr.labels]
    # the draws follow the run's seed and the step's index
    again = FusedTrainer(cfg)
    again.labels = [dict(m, **{"ppo.lr": v}) for m, v in zip(tr.labels, lr)]
    assert PBT(again).step(fs, [1.0, 4.0, 3.0, 2.0], 1)[1] == record


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    path = tmp_path_factory.mktemp("pbt") / "whole"
    return srljax.train("cartpole", overrides=OVERRIDES, run_dir=str(path))


OVERRIDES = {**SMALL, "pbt.interval": 1, "total_env_steps": 4096, "log_every_env_steps": 1024,
             "checkpoint_every_logs": 1, "ppo.anneal_lr": False}


def _rows(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def test_a_pbt_run_records_its_steps_and_settings(whole):
    rows, s = _rows(whole.run_dir), whole.summary
    steps = [r.get("pbt") for r in rows]
    assert [None if p is None else [x["step"] for x in p] for p in steps] == [[1], [2], [3], None]   # not after the last
    assert all(len(x["copies"]) == 1 for p in steps if p for x in p)              # 0.25 of 4 members
    for prev, row in zip(rows, rows[1:]):                                        # a row shows the settings it trained with
        for c in (c for x in prev.get("pbt") or () for c in x["copies"]):
            assert row["members"][c["member"]]["ppo.lr"] == c["ppo.lr"]
    assert s["pbt"]["steps"] == 3 and s["pbt"]["copies"] == 3 and s["pbt"]["interval"] == 1
    assert s["pbt"]["settings"] == [{"ppo.lr": m["ppo.lr"]} for m in rows[-1]["members"]]
    assert s["pbt"]["best_member_setting"] == s["pbt"]["settings"][s["pbt"]["best_member"]]


def test_a_pbt_run_resumes_exactly(whole, tmp_path):
    """Half the budget (ending where a step falls due, which the resume takes first), then --resume:
    the parameters, settings and steps of the uninterrupted run."""
    half = tmp_path / "half"
    srljax.train("cartpole", overrides={**OVERRIDES, "total_env_steps": 2048}, run_dir=str(half))
    resumed = srljax.train("cartpole", overrides=OVERRIDES, run_dir=str(half), resume=True)
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(resumed.learner_state), _leaves(whole.learner_state)))
    assert resumed.summary["pbt"] == whole.summary["pbt"]
    assert resumed.summary["episode_return_members"] == whole.summary["episode_return_members"]
    steps = lambda d: [x for r in _rows(d) for x in r.get("pbt") or ()]        # noqa: E731
    assert steps(half) == steps(whole.run_dir)


@pytest.mark.parametrize("args,message", [
    (["--set", "pbt.interval=2"], "PBT perturbs the swept settings; give at least one"),
    (["--sweep", "ppo.lr=1e-3", "--set", "pbt.interval=2"], "PBT needs a population of at least 2 members"),
    (["--sweep", "ppo.lr=1e-3,1e-4", "--set", "pbt.interval=2", "--set", "pbt.fraction=0.75"],
     "pbt.fraction must be in (0, 0.5]"),
    (["--set", "pbt.perturb=[0,2]"], "pbt.perturb must be positive factors"),
    (["--set", "pbt.interval=-1"], "pbt.interval must be >= 0"),
])
def test_bad_pbt_settings_are_one_line_exit_2(tmp_path, args, message):
    out = subprocess.run([sys.executable, TRAIN, "--config", "cartpole", *args, "--run-dir", str(tmp_path / "r")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and message in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert not (tmp_path / "r").exists()


def test_help_documents_pbt():
    from srljax.cli import config_help
    text = config_help()
    assert "pbt.interval (int, default 0)" in text and "pbt.perturb" in text and "pbt.fraction" in text


def test_a_pbt_configs_json_reads_back():
    """config.json of a sweep (a dict-valued field) and its PBT section come back as written (`--resume`)."""
    cfg = config.override(presets.get("cartpole"), {**SMALL, "pbt.interval": 3, "pbt.perturb": [0.5, 2]})
    back = config.from_dict(json.loads(json.dumps(config.to_dict(cfg))))
    assert back.sweep == {"ppo.lr": [1e-2, 1e-4]} and back.pbt == cfg.pbt and back.pbt.perturb == (0.5, 2.0)
