"""SAC: the squashed-Gaussian density, the twin-critic soft target, the entropy temperature, a tiny
fused run and bad input."""
import json
import math
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srljax import config as C
from srljax.envs.spaces import Box
from srljax.errors import UserError
from srljax.learners import sac
from srljax.learners.sac import soft_target, squashed_log_prob

ROOT = Path(__file__).resolve().parents[2]
TRAIN = str(ROOT / "scripts" / "train.py")


def _normal_cdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def test_squashed_log_prob_matches_a_numerical_change_of_variables():
    """Density of a = tanh(u), u ~ N(m, s): P(a0 < a < a0 + h) / h from the Gaussian's CDF through
    atanh, per dimension, against exp(log_prob); the dimensions are independent, so log densities add."""
    mean, log_std = np.array([0.3, -1.2, 2.0]), np.array([-0.5, 0.2, 0.0])
    rng = np.random.default_rng(0)
    for _ in range(5):
        u = mean + np.exp(log_std) * rng.normal(size=3)
        a, h = np.tanh(u), 1e-5
        numeric = 0.0
        for i in range(3):
            lo, hi = np.arctanh(a[i] - h / 2), np.arctanh(a[i] + h / 2)
            s = np.exp(log_std[i])
            numeric += math.log((_normal_cdf((hi - mean[i]) / s) - _normal_cdf((lo - mean[i]) / s)) / h)
        got = float(jax.jit(squashed_log_prob)(jnp.asarray(u), jnp.asarray(mean), jnp.asarray(log_std)))
        assert got == pytest.approx(numeric, abs=2e-3)
    # stable far out in the tails, where tanh(u) rounds to 1
    far = squashed_log_prob(jnp.array([30.0]), jnp.array([30.0]), jnp.array([0.0]))
    assert np.isfinite(float(far)) and float(far) == pytest.approx(-0.5 * math.log(2 * math.pi) - 2 * (math.log(2) - 30))


def test_the_twin_critic_soft_target_takes_the_smaller_q():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(2, 8)).astype(np.float32)
    logp, r, disc = (rng.normal(size=8).astype(np.float32) for _ in range(3))
    got = soft_target(jnp.asarray(q), jnp.asarray(logp), jnp.asarray(r), jnp.asarray(disc), 0.3)
    want = [r[i] + disc[i] * (min(q[0, i], q[1, i]) - 0.3 * logp[i]) for i in range(8)]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def _learner(**sets):
    cfg = C.override(C.Config(), {"algorithm.name": "sac", "env.id": "test", "sac.alpha_lr": 0.05,
                                  "network.hidden": [16], **sets})
    return sac.build(cfg, Box(-np.ones(3), np.ones(3), (3,)), Box(np.array([-2.0, 0.0]), np.array([2.0, 1.0]), (2,)))


def _batch(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return {"obs": jnp.asarray(rng.normal(size=(n, 3)), jnp.float32),
            "action": jnp.asarray(rng.uniform([-2, 0], [2, 1], size=(n, 2)), jnp.float32),
            "reward": jnp.asarray(rng.normal(size=n), jnp.float32), "discount": jnp.full((n,), 0.99),
            "next_obs": jnp.asarray(rng.normal(size=(n, 3)), jnp.float32)}


@pytest.mark.parametrize("target, falls", [(-5.0, True), (2.0, False)])
def test_the_entropy_temperature_moves_toward_its_target(target, falls):
    """Entropy above the target (-5 for 2 dims): alpha falls; below it (2 > 2 log 2, the most a
    squashed policy on [-1, 1]^2 can have): alpha rises."""
    learner = _learner(**{"sac.target_entropy": target})
    state = learner.init(jax.random.PRNGKey(0), _batch()["obs"])
    update = jax.jit(lambda s, b: learner.update(s, b, jnp.ones((32,))))
    alphas = []
    for i in range(20):
        state, metrics, td = update(state, _batch(seed=i))
        alphas.append(float(jnp.exp(state.log_alpha)))
        assert np.all(np.isfinite(np.asarray(td))) and td.shape == (32,)
    assert (alphas[-1] < 0.5) if falls else (alphas[-1] > 2.0), alphas
    assert np.all(np.diff(alphas) < 0) if falls else np.all(np.diff(alphas) > 0)


def test_actions_stay_in_the_box_and_are_uniform_before_learning_starts():
    learner = _learner(**{"sac.learning_starts": 100})
    obs = _batch(n=2000)["obs"]
    state = learner.init(jax.random.PRNGKey(0), obs)
    for env_steps in (0, 100):
        a = np.asarray(learner.act(state.params, obs, jax.random.PRNGKey(1), env_steps))
        assert a.shape == (2000, 2) and np.all(a >= [-2, 0]) and np.all(a <= [2, 1])
    early = np.asarray(learner.act(state.params, obs, jax.random.PRNGKey(1), 0))
    assert abs(early[:, 0].mean()) < 0.1 and abs(early[:, 0].std() - 4 / math.sqrt(12)) < 0.05


def test_the_distributed_actor_step_is_uniform_until_the_first_gradient_step():
    learner = _learner()
    obs = _batch(n=2000)["obs"]
    state = learner.init(jax.random.PRNGKey(0), obs)
    step = jax.jit(learner.actor_step)
    early, logp0, value = (np.asarray(x) for x in step(learner.policy_params(state), obs, jax.random.PRNGKey(1)))
    assert early.shape == (2000, 2) and np.all(early >= [-2, 0]) and np.all(early <= [2, 1])
    assert abs(early[:, 0].std() - 4 / math.sqrt(12)) < 0.05 and np.all(logp0 == 0) and np.all(value == 0)
    state = state.replace(updates=state.updates + 1)
    params = learner.policy_params(state)
    assert set(params) == {"actor", "trained"}              # the critics stay on the trainer
    a, logp, _ = (np.asarray(x) for x in step(params, obs, jax.random.PRNGKey(1)))
    assert np.all(a >= [-2, 0]) and np.all(a <= [2, 1]) and a[:, 0].std() < 1.0 and np.all(np.isfinite(logp))


@pytest.mark.parametrize("sets, words", [
    ({"sac.batch_size": 512, "sac.buffer_size": 256}, "sac.batch_size (512) and env.num_envs (4) must be <= sac.buffer_size (256)"),
    ({"sac.gradient_steps": 0}, "sac.gradient_steps must be > 0"),
    ({"sac.tau": 1.5}, "sac.tau in (0, 1]"),
    ({"sac.replay_ratio": 0}, "sac.replay_ratio must be > 0 or null"),
])
def test_impossible_sac_settings_are_refused(sets, words):
    from srljax import presets
    with pytest.raises(UserError) as e:
        C.validate(C.override(presets.get("pendulum_sac"), sets))
    assert words in str(e.value)


@pytest.mark.parametrize("config, message", [
    ("pendulum_sac", "sac needs a continuous (Box, one axis) action space; env 'gymnax/CartPole-v1' has Discrete"),
    ("cartpole_dqn", "dqn needs a discrete action space; env 'gymnax/Pendulum-v1' has Box"),
])
def test_an_algorithm_on_an_action_space_it_cannot_drive_is_one_line_and_exit_2(config, message, subprocess_env,
                                                                                 tmp_path):
    env_id = "gymnax/CartPole-v1" if config == "pendulum_sac" else "gymnax/Pendulum-v1"
    run = tmp_path / "run"
    out = subprocess.run([sys.executable, TRAIN, "--config", config, "--set", f"env.id={env_id}", "--run-dir", str(run)],
                         env=subprocess_env, capture_output=True, text=True, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and message in lines[0], out.stderr
    assert not run.exists()


def test_a_tiny_fused_sac_run_trains_and_writes_its_run_directory(tmp_path):
    import srljax

    run = tmp_path / "run"
    tiny = {"total_env_steps": 800, "log_every_env_steps": 400, "sac.learning_starts": 400, "sac.batch_size": 64,
            "sac.buffer_size": 600, "sac.gradient_steps": 1, "network.hidden": [16], "logging.tensorboard": False}
    result = srljax.train("pendulum_sac", overrides=tiny, run_dir=str(run))
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["env_steps"] for r in rows] == [400, 800]
    # env step 400 (env-batch step 100) takes the first gradient step
    assert rows[0]["gradient_steps"] == 1 and rows[-1]["gradient_steps"] == 100
    assert rows[-1]["replay_ratio"] == pytest.approx(64 / 4)
    for key in ("loss", "actor_loss", "alpha", "entropy", "q_mean", "td_abs"):
        assert np.isfinite(rows[-1][key]), key
    assert rows[-1]["alpha"] < 1.0                       # the temperature falls from 1 as the critics learn
    assert rows[-1]["buffer_size"] == 600 and result.summary["updates"] == rows[-1]["policy_version"] == 101
    assert json.loads((run / "config.json").read_text())["algorithm"]["name"] == "sac"
