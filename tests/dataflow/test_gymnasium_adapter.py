"""The gymnasium vector envs: gymnasium's own dynamics, auto-reset, episodes, action kinds; srljax's
`GymVectorEnv` is a real `gymnasium.vector.VectorEnv`, and any gymnasium VectorEnv (either autoreset
mode) gives srljax's actors the same steps (`FromGymnasium`)."""
import gymnasium
import numpy as np
import pytest

from srljax.envs import spaces
from srljax.envs.gymnasium_adapter import GymVectorEnv
from srljax.envs.gymnasium_vector import FromGymnasium
from srljax.errors import UserError


def test_matches_plain_gymnasium_envs_step_for_step():
    n, seed = 3, 5
    vec = GymVectorEnv("gym/CartPole-v1", n, seed=seed)
    plain = [gymnasium.make("CartPole-v1") for _ in range(n)]
    obs, info = vec.reset()
    assert info == {}
    np.testing.assert_array_equal(obs, np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(plain)]))
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(300):
        actions = rng.integers(0, 2, n)
        obs, reward, term, trunc, info = vec.step(actions)
        np.testing.assert_array_equal(info["_final_obs"], term | trunc)
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


def test_it_is_a_gymnasium_vector_env():
    vec = GymVectorEnv("gym/CartPole-v1", 4, seed=0)
    assert isinstance(vec, gymnasium.vector.VectorEnv) and vec.num_envs == 4
    assert vec.single_observation_space == gymnasium.make("CartPole-v1").observation_space
    assert vec.single_action_space == gymnasium.spaces.Discrete(2)
    assert vec.observation_space.shape == (4, 4) and vec.action_space == gymnasium.spaces.MultiDiscrete([2] * 4)
    assert vec.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.SAME_STEP
    wrapped = gymnasium.wrappers.vector.RecordEpisodeStatistics(vec)       # gymnasium's own wrappers fit
    obs, _ = wrapped.reset(seed=1)
    assert obs.shape == (4, 4) and vec.observation_space.contains(obs)
    seen = 0
    for _ in range(60):
        obs, *_, info = wrapped.step(vec.action_space.sample())
        seen += "episode" in info
    assert seen
    vec.close()
    assert vec.closed


def _rollout(env, steps: int, seed: int):
    out, rng = [env.reset(seed)], np.random.default_rng(seed)
    for _ in range(steps):
        obs, r, te, tr, info = env.step(rng.integers(0, 2, env.num_envs))
        out.append((obs, r, te, tr, info["final_obs"], [(e["return"], e["length"]) for e in info["episodes"]]))
    return out


@pytest.mark.parametrize("mode", ["NextStep", "SameStep", "Disabled"])
def test_any_gymnasium_vector_env_steps_as_srljax_expects(mode):
    """gymnasium.make_vec in either autoreset mode, seen through FromGymnasium, steps exactly as
    srljax's own env: the final observation of an ended episode in info, the next one reset at once."""
    ref = _rollout(FromGymnasium(GymVectorEnv("gym/CartPole-v1", 3)), 200, seed=7)
    vec = gymnasium.make_vec("CartPole-v1", 3, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode})
    view = FromGymnasium(vec)
    assert view.observation_space == spaces.Box(vec.single_observation_space.low, vec.single_observation_space.high, (4,))
    got = _rollout(view, 200, seed=7)
    np.testing.assert_array_equal(got[0], ref[0])
    assert sum(len(r[5]) for r in ref[1:]) > 5
    for g, r in zip(got[1:], ref[1:]):
        for a, b in zip(g[:5], r[:5]):
            np.testing.assert_allclose(a, b, rtol=1e-6)
        assert g[5] == r[5]


def test_a_vector_env_that_resets_every_copy_at_once_is_refused_in_one_line():
    with pytest.raises(UserError, match="vectorization_mode='sync'"):
        FromGymnasium(gymnasium.make_vec("CartPole-v1", 3))      # gymnasium's numpy CartPoleVectorEnv


def test_continuous_actions_and_truncation():
    env = FromGymnasium(GymVectorEnv("gym/Pendulum-v1", 2, seed=0))
    assert isinstance(env.action_space, spaces.Box) and env.action_space.shape == (1,)
    assert env.observation_space.shape == (3,)
    env.reset(0)
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
    assert isinstance(env.single_action_space, gymnasium.spaces.Discrete)
    with pytest.raises(UserError, match="cannot import"):
        GymVectorEnv("gym/no_such_module_xyz:Foo-v0", 1)
