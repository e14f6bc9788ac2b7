"""The gymnasium vector env: gymnasium's own dynamics, auto-reset, episodes, action kinds."""
import gymnasium
import numpy as np
import pytest

from srljax.envs import spaces
from srljax.envs.gymnasium_adapter import GymVectorEnv
from srljax.errors import UserError


def test_matches_plain_gymnasium_envs_step_for_step():
    n, seed = 3, 5
    vec = GymVectorEnv("gym/CartPole-v1", n, seed=seed)
    plain = [gymnasium.make("CartPole-v1") for _ in range(n)]
    obs = vec.reset()
    np.testing.assert_array_equal(obs, np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(plain)]))
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(300):
        actions = rng.integers(0, 2, n)
        obs, reward, term, trunc, info = vec.step(actions)
        for i, env in enumerate(plain):
            o, r, te, tr, _ = env.step(int(actions[i]))
            np.testing.assert_array_equal(info["final_obs"][i], o)
            assert (reward[i], term[i], trunc[i]) == (r, te, tr and not te)
            if te or tr:
                o, _ = env.reset()
            np.testing.assert_array_equal(obs[i], o)
        episodes += len(info["episodes"])
        for ep in info["episodes"]:
            assert ep["return"] == ep["length"] > 0
    assert episodes > 5


def test_continuous_actions_and_truncation():
    env = GymVectorEnv("gym/Pendulum-v1", 2, seed=0)
    assert isinstance(env.action_space, spaces.Box) and env.action_space.shape == (1,)
    assert env.observation_space.shape == (3,)
    env.reset()
    for t in range(200):
        obs, reward, term, trunc, info = env.step(np.full((2, 1), 5.0, np.float32))   # clipped to [-2, 2]
    assert trunc.all() and not term.any()                     # Pendulum's 200-step time limit
    assert [round(e["length"]) for e in info["episodes"]] == [200, 200]
    assert not np.array_equal(obs, info["final_obs"])


def test_unknown_id_is_a_user_error():
    with pytest.raises(UserError, match="unknown gymnasium id 'CartPol-v1'"):
        GymVectorEnv("gym/CartPol-v1", 1)


def test_module_prefixed_ids_are_imported():
    env = GymVectorEnv("gym/failing_env:FailingCartPole-v0", 1)
    assert isinstance(env.action_space, spaces.Discrete)
    with pytest.raises(UserError, match="cannot import"):
        GymVectorEnv("gym/no_such_module_xyz:Foo-v0", 1)
