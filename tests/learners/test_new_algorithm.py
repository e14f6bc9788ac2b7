"""A new algorithm without editing srljax: the test writes a toy replay algorithm (its module, its
registration) and trains it in fused mode and in distributed mode (in one process), through the
contracts of `srljax.learners.protocols` alone.

What it cannot have today is a config section of its own (`toy.*`): `srljax.config.Config` is a
fixed dataclass (an unknown section is refused by `override`, `from_dict` and `dataclasses.replace`),
section validation is named per algorithm in `config.validate`, and under mpirun nothing imports a
user's module on every rank before the registry lookup. That is issue 23's item 4 (config by
concern: a registry entry naming its config section and its validation); until then the toy keeps
its settings in its module and trains distributed in one process only.
"""
import textwrap

import numpy as np
import pytest

from srljax import config as C

TOY = textwrap.dedent('''
    """Linear Q-learning: Q(s, a) = s @ w[:, a] + b[a], one SGD step on the weighted squared TD error."""
    import jax
    import jax.numpy as jnp
    from flax import struct

    from srljax.learners.offpolicy import average
    from srljax.learners.replay_spec import ReplaySettings

    LR, EPSILON = 0.01, 0.2      # its settings (no config section of its own: see the test's docstring)


    @struct.dataclass
    class ToyState:
        params: dict
        updates: jax.Array


    class LinearQ:
        metric_keys = ("loss", "td_abs")

        def __init__(self, obs_dim, num_actions, replay, axis_name=None, grad_reduce=None):
            self.obs_dim, self.n, self.replay = obs_dim, num_actions, replay
            self.axis_name, self.grad_reduce = axis_name, grad_reduce

        def init(self, key, example_obs):
            w = 0.01 * jax.random.normal(key, (self.obs_dim, self.n))
            return ToyState(params={"w": w, "b": jnp.zeros((self.n,))}, updates=jnp.zeros((), jnp.int32))

        def q(self, params, obs):
            return obs.reshape(obs.shape[0], -1).astype(jnp.float32) @ params["w"] + params["b"]

        def greedy(self, params, obs_b):
            return jnp.argmax(self.q(params, obs_b), axis=-1).astype(jnp.int32)

        def act(self, params, obs_b, key, env_steps):
            k_explore, k_action = jax.random.split(key)
            B = obs_b.shape[0]
            explore = jax.random.uniform(k_explore, (B,)) < EPSILON
            return jnp.where(explore, jax.random.randint(k_action, (B,), 0, self.n), self.greedy(params, obs_b))

        def host_metrics(self, env_steps):
            return {}

        def policy_params(self, state):
            return state.params

        def actor_step(self, params, obs_b, key):
            action = self.act(params, obs_b, key, 0)
            zeros = jnp.zeros(action.shape, jnp.float32)
            return action, zeros, zeros

        def update(self, state, batch, weight_n):
            def loss(p):
                qa = jnp.take_along_axis(self.q(p, batch["obs"]), batch["action"][:, None].astype(jnp.int32), -1)[:, 0]
                target = batch["reward"] + batch["discount"] * jnp.max(self.q(p, batch["next_obs"]), axis=-1)
                td = jax.lax.stop_gradient(target) - qa
                return jnp.mean(weight_n * td * td), td

            (value, td), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
            grads = average(grads, self.axis_name, self.grad_reduce)
            params = jax.tree.map(lambda p, g: p - LR * g, state.params, grads)
            metrics = average({"loss": value, "td_abs": jnp.mean(jnp.abs(td))}, self.axis_name)
            return ToyState(params=params, updates=state.updates + 1), metrics, jnp.abs(td)


    def build(cfg, obs_space, action_space, *, axis_name=None, grad_reduce=None, loss=None, num_updates=None):
        replay = ReplaySettings(buffer_size=2048, batch_size=32, learning_starts=128, train_every=1,
                                gradient_steps=1, n_step=2, gamma=0.99)
        return LinearQ(int(obs_space.shape[0]), int(action_space.n), replay, axis_name, grad_reduce)
''')


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy's module on sys.path and its registry entry (both gone after the test)."""
    from srljax import config
    from srljax.learners import registry

    (tmp_path / "toy_algorithm.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "ALGORITHMS", dict(registry.ALGORITHMS))
    # register() also records the entry's sections for config.validate: restored after the test too
    monkeypatch.setattr(config, "ALGORITHM_SECTIONS", dict(config.ALGORITHM_SECTIONS))
    return registry.register(registry.AlgorithmSpec("toy", "replay", "toy_algorithm:build",
                                                    "linear Q-learning, written by a test", actions=("Discrete",)))


def test_a_toy_algorithm_written_in_the_test_satisfies_its_protocol(toy):
    from srljax import presets
    from srljax.envs.spaces import Box, Discrete
    from srljax.learners import protocols

    algo = toy.build(C.override(presets.get("cartpole_dqn"), {"algorithm.name": "toy"}), Box(-1.0, 1.0, (4,)),
                     Discrete(2))
    assert protocols.missing(algo, protocols.ReplayAlgorithm) == []


@pytest.mark.parametrize("preset, sets", [
    ("cartpole_dqn", {"env.num_envs": 4}),                                           # fused, jitted envs
    ("gym_cartpole_dqn", {"distributed.actors": 1, "distributed.stop_at_return": None}),   # distributed, in-process
])
def test_a_toy_algorithm_written_in_the_test_trains_in_both_modes(toy, preset, sets, tmp_path):
    import srljax

    result = srljax.train(preset, overrides={"algorithm.name": "toy", "total_env_steps": 1200,
                                             "log_every_env_steps": 400, "logging.tensorboard": False, **sets},
                          run_dir=str(tmp_path / "run"))
    s = result.summary
    assert s["algorithm"] == "toy" and s["env_steps"] >= 1200, s
    assert s.get("gradient_steps", s.get("updates", 0)) > 0, s
    losses = [row["loss"] for row in result.history if row.get("loss") is not None]
    assert losses and np.all(np.isfinite(losses)), result.history
    assert (tmp_path / "run" / "summary.json").exists()
