"""Your own envs: a JAX env class written here trains in fused mode through `srljax.train(cfg, env=...)`
(gymnax-style and srljax's own protocol), and a gymnasium env trains in distributed mode through
a factory or as a gymnasium VectorEnv object."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import srljax
from srljax.errors import UserError


@struct.dataclass
class CorridorState:
    pos: jax.Array
    time: int


@struct.dataclass
class CorridorParams:
    length: int = 6
    max_steps_in_episode: int = 30


def _gymnax_corridor():
    """A gymnax Environment: walk right along a corridor; reward 1 at the far end (terminal)."""
    from gymnax.environments import environment, spaces

    class Corridor(environment.Environment):
        @property
        def default_params(self):
            return CorridorParams()

        def step_env(self, key, state, action, params):
            pos = jnp.clip(state.pos + jnp.where(action == 1, 1, -1), 0, params.length)
            state = CorridorState(pos=pos, time=state.time + 1)
            done = self.is_terminal(state, params)
            reward = (pos == params.length).astype(jnp.float32)
            return self.get_obs(state, params), state, reward, done, {}

        def reset_env(self, key, params):
            state = CorridorState(pos=jnp.int32(0), time=0)
            return self.get_obs(state, params), state

        def get_obs(self, state, params=None, key=None):
            return jnp.array([state.pos / 6.0, state.time / 30.0], jnp.float32)

        def is_terminal(self, state, params):
            return jnp.logical_or(state.pos >= params.length, state.time >= params.max_steps_in_episode)

        def action_space(self, params=None):
            return spaces.Discrete(2)

        def observation_space(self, params):
            return spaces.Box(0.0, 1.0, (2,), jnp.float32)

    return Corridor()


FUSED = {"env.num_envs": 8, "rollout.rollout_len": 32, "total_env_steps": 40_000, "log_every_env_steps": 4096,
         "ppo.lr": 3e-3}


def test_a_gymnax_style_env_class_trains_in_fused_mode(tmp_path):
    result = srljax.train("cartpole", overrides=FUSED, env=_gymnax_corridor(), run_dir=str(tmp_path / "run"))
    assert result.config.env.id == "custom/Corridor"
    first, last = result.history[0]["episode_return"], result.summary["episode_return"]
    # random walking rarely reaches the end in 30 steps; walking right always does (return 1)
    assert last > 0.95 and last > first, (first, last)
    assert (tmp_path / "run" / "config.json").is_file()


def test_a_srljax_protocol_env_trains_in_fused_mode():
    from srljax.envs.core import JaxEnv, State
    from srljax.envs.spaces import Box, Discrete

    class Bandit(JaxEnv):
        """One-step episodes: action 1 pays 1, action 0 pays 0."""
        observation_space = Box(low=0.0, high=1.0, shape=(1,))
        action_space = Discrete(2)

        def reset(self, key):
            obs = jnp.zeros((1,), jnp.float32)
            return State(obs=obs, final_obs=obs, reward=jnp.float32(0), done=jnp.bool_(False),
                         truncated=jnp.bool_(False), inner=jnp.int32(0), metrics={})

        def step(self, state, action):
            return state.replace(reward=(action == 1).astype(jnp.float32), done=jnp.bool_(True))

    result = srljax.train("cartpole", overrides={**FUSED, "total_env_steps": 20_000}, env=Bandit())
    assert result.summary["episode_return"] > 0.9


def test_a_gymnasium_env_factory_trains_in_distributed_mode():
    import gymnasium
    overrides = {"total_env_steps": 40_000, "distributed.stop_at_return": None}
    result = srljax.train("gym_cartpole", overrides=overrides,
                          env=lambda: gymnasium.make("CartPole-v1", disable_env_checker=True))
    assert result.summary["in_process"] and result.summary["env"].startswith("custom/")
    assert result.summary["episode_return"] > 60, result.summary     # a random policy scores about 22


def test_a_gymnasium_vector_env_object_trains_in_distributed_mode():
    """Any gymnasium VectorEnv (here gymnasium's SyncVectorEnv in its default NEXT_STEP autoreset
    mode) is the run's one env batch: env.num_envs comes from it."""
    import gymnasium
    vec = gymnasium.make_vec("CartPole-v1", 8, vectorization_mode="sync")
    overrides = {"total_env_steps": 24_000, "distributed.stop_at_return": None}
    result = srljax.train("gym_cartpole", overrides=overrides, env=vec)
    cfg = result.config
    assert cfg.env.id == "custom/CartPole-v1" and cfg.env.num_envs == 8 and cfg.distributed.actors == 1
    assert result.summary["episode_return"] > 40, result.summary     # a random policy scores about 22
    assert not vec.closed                                            # the caller's to close
    vec.close()


def test_an_env_object_that_does_not_fit_the_mode_is_one_line():
    with pytest.raises(UserError, match="fused mode needs a JAX env"):
        srljax.train("cartpole", env=lambda: None)
    with pytest.raises(UserError, match="not a JAX env"):
        srljax.train("cartpole", env=object())
    with pytest.raises(UserError, match="distributed mode takes a gymnasium VectorEnv or a factory"):
        srljax.train("gym_cartpole", env=_gymnax_corridor())
    import gymnasium
    with pytest.raises(UserError, match="fused mode needs a JAX env"):
        srljax.train("cartpole", env=gymnasium.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
