"""srljax-evaluate for every env family: a fused CartPole run and a distributed gymnasium run play
their latest checkpoint, report returns and write a GIF; an env that cannot be drawn is one line."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import srljax

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    srljax.train("cartpole", overrides={"total_env_steps": 30_000, "log_every_env_steps": 10_240},
                 run_dir=str(base / "fused"))
    srljax.train("gym_cartpole", overrides={"total_env_steps": 8_000, "distributed.stop_at_return": None,
                                            "distributed.log_interval_s": 0.1}, run_dir=str(base / "dist"))
    return base


def evaluate(args, env):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate.py"), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name, env_id", [("fused", "gymnax/CartPole-v1"), ("dist", "gym/CartPole-v1")])
def test_a_run_plays_its_checkpoint_and_writes_a_gif(runs, name, env_id, subprocess_env, tmp_path):
    from PIL import Image
    gif = tmp_path / "out.gif"
    out = evaluate(["--run-dir", runs / name, "--episodes", 4, "--video", gif], subprocess_env)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    assert got["env"] == env_id and got["episodes"] == 4
    assert 8 <= got["return_min"] <= got["return_mean"] <= got["return_max"] <= 500
    assert got["video_frames"] >= 8
    with Image.open(gif) as im:
        assert im.n_frames >= 2 and im.size[0] > 0


def test_an_env_that_cannot_be_drawn_is_one_line(runs, subprocess_env, tmp_path):
    run = tmp_path / "mc"
    shutil.copytree(runs / "fused", run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["env"]["id"] = "gymnax/MountainCar-v0"
    (run / "config.json").write_text(json.dumps(cfg))
    out = evaluate(["--run-dir", run, "--video", tmp_path / "x.gif"], subprocess_env)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "cannot be rendered" in lines[0], out.stderr


def test_an_unwritable_out_is_refused_before_playing(runs, subprocess_env, tmp_path):
    out = evaluate(["--run-dir", runs / "fused", "--out", tmp_path / "missing" / "x.json"], subprocess_env)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and "cannot write" in lines[0], out.stderr
    assert out.stdout == ""                                 # refused before it played
