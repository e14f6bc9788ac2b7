"""Numerical guard: non-finite gradients skip the step, are counted, and K in a row stop the run."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import srljax
from srljax.errors import NonFiniteError
from srljax.learners import ppo_loss

SMALL = {"total_env_steps": 16384, "log_every_env_steps": 4096, "env.num_envs": 8, "rollout.rollout_len": 64}


def test_nan_gradients_stop_the_run_after_k_updates():
    def nan_loss(model, params, mb, key):
        loss, metrics = ppo_loss()(model, params, mb, key)
        return loss * jnp.nan, metrics

    with pytest.raises(NonFiniteError, match=r"stopped at update 3: 48 consecutive gradient steps"):
        srljax.train("cartpole", overrides={**SMALL, "rollout.max_nonfinite_updates": 3}, loss=nan_loss)


def test_occasional_nan_gradients_are_skipped_and_counted():
    base = ppo_loss()

    def flaky_loss(model, params, mb, key):
        loss, metrics = base(model, params, mb, key)
        return loss * jnp.where(jax.random.uniform(key) < 0.25, jnp.nan, 1.0), metrics

    result = srljax.train("cartpole", overrides=SMALL, loss=flaky_loss)
    skipped = [row["skipped_steps"] for row in result.history]
    total_steps = result.summary["updates"] * 4 * 4
    assert 0 < result.summary["skipped_steps"] == sum(skipped) < total_steps
    leaves = jax.tree.leaves(result.learner_state.params)
    assert all(np.isfinite(np.asarray(x)).all() for x in leaves)
