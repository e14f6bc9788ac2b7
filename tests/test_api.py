"""The notebook-facing API: `srljax.train` with a custom loss in both modes, `TrainResult`."""
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")

import srljax  # noqa: E402

TINY_FUSED = {"env.num_envs": 4, "rollout.rollout_len": 16, "ppo.minibatches": 2, "ppo.epochs": 1,
              "total_env_steps": 640, "log_every_env_steps": 128}
TINY_DISTRIBUTED = {"total_env_steps": 4096, "distributed.stop_at_return": None, "distributed.log_interval_s": 0.01}


def counting_loss(calls):
    """A plain policy-gradient loss that reports a metric of its own and counts its traces."""

    def loss(model, params, mb, key):
        calls.append(sorted(mb))
        out, value = model.forward(params, mb)
        logp = model.dist.log_prob(out, mb["action"])
        pg = -jnp.mean(logp * mb["advantage"])
        v = 0.5 * jnp.mean(jnp.square(value - mb["target"]))
        return pg + v, {"my_metric": jnp.float32(7.0), "pg": pg}
    return loss


def test_fused_train_uses_the_custom_loss():
    calls = []
    result = srljax.train("cartpole", overrides=TINY_FUSED, loss=counting_loss(calls))
    assert calls, "the loss was never traced"
    for key in ("obs", "action", "logp", "reward", "value", "advantage", "target", "terminated", "truncated"):
        assert key in calls[0]
    assert result.summary["env_steps"] >= 640
    rows = [h for h in result.history if "my_metric" in h]
    assert rows and all(abs(h["my_metric"] - 7.0) < 1e-6 for h in rows)
    assert result.learner_state is not None
    steps, _ = result.curve("my_metric")
    assert steps == sorted(steps) and len(steps) == len(rows)


def test_distributed_in_process_train_uses_the_custom_loss():
    calls = []
    result = srljax.train("gym_cartpole", overrides=TINY_DISTRIBUTED, loss=counting_loss(calls))
    assert calls
    assert result.summary["in_process"] and result.summary["env_steps"] >= 4096
    assert any(abs(h.get("my_metric", 0.0) - 7.0) < 1e-6 for h in result.history)


def test_plot_labels_and_axes():
    result = srljax.TrainResult(config=srljax.get_config("cartpole"), summary={},
                                history=[{"env_steps": 100, "episode_return": 10.0},
                                         {"env_steps": 200, "episode_return": None},
                                         {"env_steps": 300, "episode_return": 30.0}])
    ax = result.plot(label="mine")
    (line,) = ax.get_lines()
    assert line.get_label() == "mine"
    assert list(line.get_xdata()) == [100, 300] and list(line.get_ydata()) == [10.0, 30.0]
    assert result.plot().get_lines()[0].get_label() == "cartpole"
