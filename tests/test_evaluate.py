"""Hide-and-seek end to end: a tiny distributed-mode run (stage statistics), then scripts/evaluate.py
on its checkpoint (two updates from initialisation)."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from srljax import config as C
from srljax.checkpoint import Checkpointer

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "evaluate.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("evaluate_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory written by a real (tiny) distributed-mode training run, in one process:
    actors with packed observations and recurrent carries, a policy worker, a trainer, 2 updates."""
    path = tmp_path_factory.mktemp("hns_run")
    cfg = C.override(C.get("hns_quadrant"), {
        "network.hidden": [8, 8], "env.kwargs": {"horizon": 20}, "env.num_envs": 4, "ppo.rollout_len": 20,
        "ppo.minibatches": 2, "ppo.epochs": 1, "total_env_steps": 160, "distributed.log_interval_s": 0.01})
    from srljax.dataflow.distributed import run_local
    from srljax.runlog import RunLogger
    (path / "config.json").write_text(json.dumps(C.to_dict(cfg)))
    logger = RunLogger(path, cfg.total_env_steps, quiet=True)
    summary = run_local(cfg, logger, checkpointer=Checkpointer(path))
    assert summary["updates"] == 2 and summary["env_steps"] == 160
    return path


def test_training_writes_stage_statistics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"stage/hider_seen_frac", "stage/max_box_move_prep", "hider_return", "seeker_return"} <= set(rows[-1])
    eps = [r for r in rows if r["stage/hider_seen_frac"] is not None]
    assert eps and all(0.0 <= r["stage/hider_seen_frac"] <= 1.0 for r in eps)
    assert (run_dir / "stage_stats.png").stat().st_size > 1000


def test_evaluate_plays_matchups_and_writes_a_gif(run_dir, tmp_path, capsys):
    ev = _load_script()
    gif = tmp_path / "episode.gif"
    rc = ev.main(["--run-dir", str(run_dir), "--episodes", "2", "--num-envs", "2", "--gif", str(gif),
                  "--out", str(tmp_path / "eval.json")])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["checkpoint"].endswith("ckpt_0000000002.msgpack")
    assert set(result["matchups"]) == {"self", "seekers", "hiders", "random"}
    for stats in result["matchups"].values():
        assert stats["episodes"] == 2
        assert stats["length"] == 20
        assert 0.0 <= stats["hider_seen_frac"] <= 1.0
        # zero-sum outside penalties: a team's return is minus the other's
        assert stats["hider_return"] == pytest.approx(-stats["seeker_return"], abs=1e-6) or stats["hider_return"] < -5
    assert set(result["learning_check"]) == {"seekers_gain", "hiders_gain", "required"}
    assert gif.stat().st_size > 1000 and gif.read_bytes()[:3] == b"GIF"
    assert json.loads((tmp_path / "eval.json").read_text()) == result


def test_bad_run_dir_is_one_line_and_exit_2(tmp_path, subprocess_env):
    proc = subprocess.run([sys.executable, str(SCRIPT), "--run-dir", str(tmp_path / "nothing")],
                          capture_output=True, text=True, env=subprocess_env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no config.json" in proc.stderr
