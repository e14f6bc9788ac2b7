"""Hide-and-seek end to end: a tiny distributed-mode run (stage statistics), then its matchups
(`srljax.matchup`) through `srljax-evaluate` (scripts/evaluate.py)
on its checkpoint (two updates from initialisation)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from srljax import config as C
from srljax import evaluate, matchup, presets, run

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "evaluate.py"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory written by a real (tiny) distributed-mode training run, in one process:
    actors with packed observations and recurrent carries running the policy inline (the preset's
    layout), a trainer, 2 updates."""
    path = tmp_path_factory.mktemp("hns_run") / "run"
    cfg = C.override(presets.get("hns_quadrant"), {
        "network.hidden": [8, 8], "env.kwargs": {"horizon": 20}, "env.num_envs": 4, "rollout.rollout_len": 20,
        "ppo.minibatches": 2, "ppo.epochs": 1, "total_env_steps": 160, "distributed.log_interval_s": 0.01})
    summary = run(cfg, run_dir=path).summary
    assert summary["updates"] == 2 and summary["env_steps"] == 160
    return path


def test_training_writes_stage_statistics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert {"stage/hider_seen_frac", "stage/max_box_move_prep", "hider_return", "seeker_return"} <= set(rows[-1])
    eps = [r for r in rows if r["stage/hider_seen_frac"] is not None]
    assert eps and all(0.0 <= r["stage/hider_seen_frac"] <= 1.0 for r in eps)
    assert (run_dir / "stage_stats.png").stat().st_size > 1000


def test_evaluate_plays_matchups_and_writes_a_gif(run_dir, tmp_path, capsys):
    gif = tmp_path / "episode.gif"
    rc = evaluate.main(["--run-dir", str(run_dir), "--episodes", "2", "--num-envs", "2", "--gif", str(gif),
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


def test_simulator_alone_replays_the_checkpoints_games(run_dir, capsys):
    """--sim-alone: the checkpoint's self-play actions are recorded, and replaying them with no
    policy from the same start is deterministic (two replays agree step for step: the yardstick
    times the recorded games, not new ones), and the replays are timed."""
    cfg = C.from_dict(json.loads((run_dir / "config.json").read_text()))
    from srljax.envs.registry import make as make_env
    probe = make_env(cfg.env.id, num_envs=1, seed=0, **dict(cfg.env.kwargs))
    algo, policy = matchup.load_policy(cfg, probe, None)
    act = matchup.make_act(algo, greedy=False)
    actions = matchup.record_actions(cfg, algo, policy, act, 2, 12, seed=3)
    assert actions.shape == (12, 2, probe.num_agents, 5) and actions.any()
    runs = []
    for _ in range(2):
        env = make_env(cfg.env.id, num_envs=2, seed=3, **dict(cfg.env.kwargs))
        env.reset(3)
        for a in actions:
            obs = env.step(a)[0]
        runs.append(obs)
    for k in runs[0]:
        assert (runs[0][k] == runs[1][k]).all(), k
    rc = evaluate.main(["--run-dir", str(run_dir), "--episodes", "1", "--num-envs", "2", "--matchup", "random",
                  "--sim-alone", "1", "--sim-steps", "4"])
    assert rc == 0
    sim = json.loads(capsys.readouterr().out)["simulator_alone"]
    assert sim["processes"] == 1 and sim["games_per_process"] == cfg.env.num_envs // cfg.distributed.ring_size
    assert sim["env_steps_per_s_trained_actions"] > 0 and sim["env_steps_per_s_random_actions"] > 0
