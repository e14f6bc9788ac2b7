"""Hide-and-seek in JAX end to end: a tiny fused run of the `hns_jax_quadrant` preset (the stage
statistics under the MuJoCo game's names, stage_stats.png), its resume, then its matchups and GIF
through `srljax-evaluate` (scripts/evaluate.py)."""
import json

import pytest

from srljax import config as C
from srljax import evaluate, presets, run

TINY = {"network.hidden": [8, 8], "env.kwargs": {"horizon": 20, "prep_steps": 8, "layouts": 64, "random_opponents": 0.5},
        "env.num_envs": 4, "rollout.rollout_len": 20, "ppo.minibatches": 2, "total_env_steps": 160,
        "log_every_env_steps": 80, "cpu_devices": 1}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("hns_jax_run") / "run"
    summary = run(C.override(presets.get("hns_jax_quadrant"), TINY), run_dir=path).summary
    assert summary["updates"] == 2 and summary["env_steps"] == 160
    return path


def test_fused_training_logs_the_stage_statistics_under_the_mujoco_games_names(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    keys = {"stage/hider_seen_frac", "stage/max_box_move_prep", "stage/num_box_lock", "hider_return", "seeker_return"}
    assert all(keys <= set(r) for r in rows)
    assert not any(k.startswith("episode_stat_") for r in rows for k in r)
    for r in rows:                        # 4 games of 20 steps end together every rollout
        assert r["episodes"] == 4 and 0.0 <= r["stage/hider_seen_frac"] <= 1.0
        assert r["stage/max_box_move"] >= 0.0
    assert (run_dir / "stage_stats.png").stat().st_size > 1000


def test_a_fused_hide_and_seek_run_resumes_where_it_stopped(run_dir, tmp_path):
    import shutil
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    cfg = C.override(presets.get("hns_jax_quadrant"), {**TINY, "total_env_steps": 240})
    summary = run(cfg, run_dir=copy, resume=True).summary
    assert summary["resumed_from_env_steps"] == 160 and summary["env_steps"] == 240 and summary["updates"] == 3
    rows = [json.loads(line) for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [80, 160, 240]


def test_evaluate_plays_the_jax_games_matchups_and_writes_a_gif(run_dir, tmp_path, capsys):
    gif = tmp_path / "episode.gif"
    rc = evaluate.main(["--run-dir", str(run_dir), "--episodes", "5", "--num-envs", "2", "--gif", str(gif)])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["env"] == "hns_jax/quadrant" and result["checkpoint"].endswith("ckpt_0000000002.msgpack")
    assert set(result["matchups"]) == {"self", "seekers", "hiders", "random"}
    for stats in result["matchups"].values():
        assert stats["episodes"] == 5 and stats["length"] == 20
        assert 0.0 <= stats["hider_seen_frac"] <= 1.0
        assert stats["hider_return"] == pytest.approx(-stats["seeker_return"], abs=1e-5) or stats["hider_return"] < -5
    check = result["learning_check"]
    assert check["seekers_gain"] == pytest.approx(result["matchups"]["seekers"]["hider_seen_frac"]
                                                  - result["matchups"]["random"]["hider_seen_frac"])
    assert gif.stat().st_size > 1000 and gif.read_bytes()[:3] == b"GIF"


def test_sim_alone_is_refused_for_the_jax_game(run_dir, capsys):
    assert evaluate.main(["--run-dir", str(run_dir), "--sim-alone", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bench_envs.py --sections hns_jax" in err[0]
