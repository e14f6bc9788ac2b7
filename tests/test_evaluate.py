"""scripts/evaluate.py on a freshly initialised hide-and-seek checkpoint."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from srljax import config as C
from srljax.checkpoint import Checkpointer
from srljax.envs.hide_and_seek import make_vec_env
from srljax.learners import make_algorithm

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "evaluate.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("evaluate_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as training writes it: config.json and one checkpoint of a fresh learner."""
    path = tmp_path_factory.mktemp("hns_run")
    cfg = C.override(C.get("hns_quadrant"), {"network.hidden": [8, 8], "env.kwargs": {"horizon": 40}})
    (path / "config.json").write_text(json.dumps(C.to_dict(cfg)))
    ev = _load_script()
    env = make_vec_env("quadrant", num_envs=1, seed=0)
    algo = make_algorithm(cfg, env.observation_space, env.action_space)
    state = jax.jit(algo.init)(jax.random.PRNGKey(0), ev.example_batch(env, algo.model.state_size, 10))
    env.close()
    Checkpointer(path).save(1, {"learner": state, "env_steps": 0})
    return path


def test_evaluate_plays_matchups_and_writes_a_gif(run_dir, tmp_path, capsys):
    ev = _load_script()
    gif = tmp_path / "episode.gif"
    rc = ev.main(["--run-dir", str(run_dir), "--episodes", "2", "--num-envs", "2", "--gif", str(gif),
                  "--out", str(tmp_path / "eval.json")])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["checkpoint"].endswith("ckpt_0000000001.msgpack")
    assert set(result["matchups"]) == {"self", "seekers", "hiders", "random"}
    for stats in result["matchups"].values():
        assert stats["episodes"] == 2
        assert stats["length"] == 40
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
