"""The JAX env protocol: registry, batching, auto-reset, truncation vs termination, statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srljax.envs import make
from srljax.envs.spaces import Box, Discrete
from srljax.errors import UserError


def test_unknown_names_list_what_exists():
    with pytest.raises(UserError, match="CartPole-v1"):
        make("gymnax/NoSuchEnv-v0")
    with pytest.raises(UserError, match="inverted_pendulum"):
        make("brax/no_such_env")
    with pytest.raises(UserError, match="families: gymnax, brax, jaxmarl, jax, hns_jax, gym, hns, pz"):
        make("atari/Pong")
    with pytest.raises(UserError, match="quadrant, full"):
        make("hns_jax/no_such_variant")
    with pytest.raises(UserError, match="FAMILY/NAME"):
        make("CartPole-v1")


def test_gymnax_spaces_and_batch_shapes():
    env = make("gymnax/CartPole-v1", num_envs=3)
    assert env.observation_space.shape == (4,)
    assert env.action_space == Discrete(2)
    state = env.reset(jax.random.PRNGKey(0))
    assert state.obs.shape == (3, 4)
    state = env.step(state, jnp.zeros(3, jnp.int32))
    assert state.reward.shape == (3,) and state.done.shape == (3,)
    assert isinstance(make("gymnax/Pendulum-v1").action_space, Box)


def _run(env, steps, action_fn, key=0):
    state = jax.jit(env.reset)(jax.random.PRNGKey(key))
    step = jax.jit(env.step)
    out = []
    for t in range(steps):
        prev = state
        state = step(state, action_fn(t))
        out.append((prev, state))
    return out


def test_truncation_is_not_termination_and_final_obs_is_kept():
    # A 10-step time limit: the 10th step truncates; the obs returned is a fresh reset.
    env = make("gymnax/CartPole-v1", num_envs=2, max_steps_in_episode=10)
    trace = _run(env, 12, lambda t: jnp.array([t % 2, (t + 1) % 2], jnp.int32))
    prev, s = trace[9]
    assert bool(s.truncated.all()) and not bool(s.done.any())
    np.testing.assert_array_equal(s.metrics["episode_length"], [10.0, 10.0])
    np.testing.assert_array_equal(s.metrics["episode_return"], [10.0, 10.0])
    assert not np.allclose(s.obs, s.final_obs)          # obs was reset, final_obs kept
    assert np.all(np.abs(s.obs) <= 0.05)               # CartPole resets uniformly in [-0.05, 0.05]
    # Mid-episode, final_obs is the obs itself and nothing ends.
    _, mid = trace[4]
    np.testing.assert_array_equal(mid.obs, mid.final_obs)
    assert not bool(mid.truncated.any())
    assert float(mid.metrics["episode_ended"].sum()) == 0.0


def test_termination_resets_and_reports_episode():
    env = make("gymnax/CartPole-v1", num_envs=4)
    trace = _run(env, 40, lambda t: jnp.ones(4, jnp.int32))   # always push right: falls in ~10 steps
    ends = [(t, s) for t, (_, s) in enumerate(trace) if bool(s.done.any())]
    assert ends, "pushing one way must end an episode"
    t, s = ends[0]
    i = int(np.argmax(np.asarray(s.done)))
    assert not bool(s.truncated[i])
    assert float(s.metrics["episode_ended"][i]) == 1.0
    assert float(s.metrics["episode_length"][i]) == t + 1
    assert abs(float(s.final_obs[i, 2])) > 0.2          # pole angle past the 12-degree limit
    assert abs(float(s.obs[i, 2])) <= 0.05


def test_reset_draws_differ_across_envs_and_episodes():
    env = make("gymnax/CartPole-v1", num_envs=8)
    s = env.reset(jax.random.PRNGKey(1))
    assert len({tuple(np.round(np.asarray(o), 6)) for o in s.obs}) == 8


def test_brax_env_truncates_at_episode_length():
    env = make("brax/inverted_pendulum", num_envs=2, episode_length=5)
    assert env.action_space.shape == (1,) and env.observation_space.shape == (4,)
    trace = _run(env, 5, lambda t: jnp.zeros((2, 1)))
    _, s = trace[4]
    assert bool(s.truncated.all()) and not bool(s.done.any())
    np.testing.assert_array_equal(s.metrics["episode_length"], [5.0, 5.0])


def _noisy_env():
    """A gymnax Environment whose reset draws its observation and whose step returns a draw as
    its reward: the adapter's reset and step randomness, made visible."""
    from gymnax.environments import environment, spaces
    from flax import struct

    @struct.dataclass
    class S:
        time: jax.Array
        x: jax.Array

    @struct.dataclass
    class Params:
        max_steps_in_episode: int = 5

    class Noisy(environment.Environment):
        @property
        def default_params(self):
            return Params()

        def step_env(self, key, state, action, params):
            u = jax.random.uniform(key)
            state = S(time=state.time + 1, x=state.x)
            return state.x, state, u, jnp.asarray(False), {}

        def reset_env(self, key, params):
            x = jax.random.uniform(key, (3,))
            return x, S(time=jnp.zeros((), jnp.int32), x=x)

        def is_terminal(self, state, params):
            return state.time >= params.max_steps_in_episode

        def action_space(self, params=None):
            return spaces.Discrete(2)

        def observation_space(self, params):
            return spaces.Box(0.0, 1.0, (3,))

    return Noisy()


def test_step_draws_of_a_noisy_env_are_fresh_per_env_step_and_episode():
    """An env whose step reads its key carries the reset's key and folds the step count in (no
    split at every reset): every env, step and episode draws its own numbers, none of them one of
    the reset's own draws."""
    from srljax.envs.adapters import GymnaxEnv
    from srljax.envs.core import wrap_for_training

    inner = GymnaxEnv.from_env(_noisy_env())
    assert inner._draws
    env = wrap_for_training(inner, 4)
    state = env.reset(jax.random.PRNGKey(3))
    step = jax.jit(env.step)
    rewards, resets = [], [np.asarray(state.obs)]
    for _ in range(12):                     # episodes of 5 steps: 3 episodes per env
        state = step(state, jnp.zeros(4, jnp.int32))
        rewards.append(np.asarray(state.reward))
        resets.append(np.asarray(state.obs))
    rewards = np.stack(rewards)                             # [12, 4]
    assert np.all((rewards >= 0) & (rewards < 1))
    assert len(np.unique(rewards)) == rewards.size          # fresh per env, step and episode
    assert not set(np.unique(rewards)) & set(np.unique(np.stack(resets)))
