"""Numerical guards in distributed mode (workers in one process): NaN/inf from a CPU env stops the
run naming env, index and step, or resets the env batch and is counted; non-finite gradients skip
the update, are counted, and K updates in a row stop the run naming the update."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srljax import config as C
from srljax import presets, run
from srljax.dataflow.roles.guards import NonFiniteEnvError
from srljax.errors import NonFiniteError
from srljax.learners import ppo_loss

SMALL = {"env.num_envs": 8, "rollout.rollout_len": 16, "distributed.stop_at_return": None,
         "distributed.log_interval_s": 0.05}


@pytest.fixture(autouse=True)
def fresh_nan_env():
    import itertools

    import nan_env
    nan_env._instances = itertools.count()      # instance 1 of each run is actor 0's env 0


def _cfg(**extra):
    return C.validate(C.override(presets.get("gym_cartpole"), {**SMALL, **extra}))


def test_nan_observation_from_a_cpu_env_stops_the_run_naming_env_and_step():
    cfg = _cfg(**{"env.id": "gym/nan_env:NanCartPole-v0", "total_env_steps": 20_000})
    with pytest.raises(NonFiniteEnvError) as info:
        run(cfg)
    msg = str(info.value)
    assert "env gym/nan_env:NanCartPole-v0 returned a non-finite observation with nan at step 150 of env 0 " \
           "of actor 0" in msg, msg
    assert "env.on_nonfinite=reset" in msg


def test_reset_mode_resets_the_env_counts_the_event_and_keeps_learning_finite():
    cfg = _cfg(**{"env.id": "gym/nan_env:NanCartPole-v0", "total_env_steps": 12_000, "env.on_nonfinite": "reset"})
    result = run(cfg)
    summary = result.summary
    # 12k steps over 16 envs: actor 0's env 0 takes ~750 steps, so about 5 bad steps (NaN observations
    # and infinite rewards alternately), each reset and counted.
    assert summary["env_steps"] >= 12_000
    assert 3 <= summary["nonfinite_env_resets"] <= 6, summary["nonfinite_env_resets"]
    assert result.history[-1]["nonfinite_env_resets"] == summary["nonfinite_env_resets"]
    assert summary["skipped_steps"] == 0 and np.isfinite(summary["episode_return"])


def test_nan_gradients_stop_the_distributed_run_after_k_updates():
    def nan_loss(model, params, mb, key):
        loss, metrics = ppo_loss()(model, params, mb, key)
        return loss * jnp.nan, metrics

    cfg = _cfg(**{"total_env_steps": 50_000, "rollout.max_nonfinite_updates": 3})
    with pytest.raises(NonFiniteError, match=r"stopped at update 3: 3 updates in a row had only non-finite "
                                             r"gradients \(limit rollout.max_nonfinite_updates=3"):
        run(cfg, loss=nan_loss)


def test_occasional_nan_gradients_are_skipped_and_counted():
    base = ppo_loss()

    def flaky_loss(model, params, mb, key):
        loss, metrics = base(model, params, mb, key)
        return loss * jnp.where(jax.random.uniform(key) < 0.25, jnp.nan, 1.0), metrics

    cfg = _cfg(**{"total_env_steps": 8_000})
    result = run(cfg, loss=flaky_loss)
    summary = result.summary
    per_update = cfg.ppo.epochs * cfg.ppo.minibatches
    assert 0 < summary["skipped_steps"] < summary["updates"] * per_update
    assert result.history[-1]["skipped_steps_total"] == summary["skipped_steps"]
    assert sum(r["skipped_steps"] for r in result.history) <= summary["skipped_steps"]
    assert np.isfinite(summary["episode_return"])
