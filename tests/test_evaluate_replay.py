"""srljax-evaluate for replay algorithms: a tiny fused DQN run (gymnax CartPole) and a tiny fused SAC
run (gymnax Pendulum) play their latest checkpoint greedily (argmax Q; SAC's squashed mean action),
report returns and write a GIF. The runs are made once for the module; `evaluate.main` runs in this
process (the CLI's own code path, without a second interpreter's jax import)."""
import json

import numpy as np
import pytest

import srljax
from srljax import evaluate

TINY = {"network.hidden": [16], "log_every_env_steps": 200, "logging.tensorboard": False}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("replay_runs")
    # learning from the first step, so each run compiles one chunk program; one log interval, one checkpoint
    srljax.train("cartpole_dqn", overrides={**TINY, "total_env_steps": 200, "dqn.batch_size": 8, "dqn.buffer_size": 1000,
                                            "dqn.learning_starts": 0, "dqn.n_step": 1, "dqn.gradient_steps": 1},
                 run_dir=str(base / "dqn"))
    srljax.train("pendulum_sac", overrides={**TINY, "total_env_steps": 200, "sac.batch_size": 4, "sac.buffer_size": 1000,
                                            "sac.learning_starts": 0, "sac.gradient_steps": 1},
                 run_dir=str(base / "sac"))
    return base


def play(capsys, *args):
    code = evaluate.main([str(a) for a in args], prog="srljax-evaluate")
    out = capsys.readouterr()
    assert code == 0, out.err[-3000:]
    return json.loads(out.out)


@pytest.mark.parametrize("name, env_id, frames, low, high", [
    ("dqn", "gymnax/CartPole-v1", 8, 8.0, 500.0),           # CartPole: 8-500 steps of reward 1
    ("sac", "gymnax/Pendulum-v1", 200, -2000.0, 0.0),       # Pendulum: 200 steps of reward in [-16.3, 0]
])
def test_a_replay_run_plays_its_checkpoint_greedily_and_writes_a_gif(runs, capsys, tmp_path, name, env_id, frames,
                                                                     low, high):
    from PIL import Image

    gif = tmp_path / f"{name}.gif"
    got = play(capsys, "--run-dir", runs / name, "--episodes", 3, "--video", gif)
    assert got["env"] == env_id and got["algorithm"] == name and got["policy"] == "greedy"
    assert got["episodes"] == 3 and got["checkpoint"].endswith(".msgpack")
    assert low <= got["return_min"] <= got["return_mean"] <= got["return_max"] <= high
    assert got["video_frames"] >= frames
    with Image.open(gif) as im:
        assert im.n_frames >= 2 and im.size[0] > 0


def test_greedy_policies_are_argmax_q_and_the_squashed_mean(runs):
    import jax
    import jax.numpy as jnp

    from srljax import config as C
    from srljax import playback
    from srljax.evaluate import latest_checkpoint

    obs = {"dqn": jnp.asarray(np.random.default_rng(0).normal(size=(5, 4)), jnp.float32),
           "sac": jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)), jnp.float32)}
    for name in ("dqn", "sac"):
        cfg = C.from_dict(json.loads((runs / name / "config.json").read_text()))
        policy, params = playback.load_policy(cfg, latest_checkpoint(runs / name))
        action, _, _ = policy.act(params, obs[name], jax.random.PRNGKey(0))
        again, _, _ = policy.act(params, obs[name], jax.random.PRNGKey(1))
        np.testing.assert_array_equal(action, again)                       # no exploration: keys do not matter
        if name == "dqn":
            np.testing.assert_array_equal(action, jnp.argmax(policy.algo.q(params, obs[name]), axis=-1))
        else:
            mean, _ = policy.algo.actor.apply(params["actor"], obs[name])
            np.testing.assert_allclose(action, 2.0 * jnp.tanh(mean), rtol=1e-6)   # Pendulum's bounds: [-2, 2]
