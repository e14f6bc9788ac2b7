"""Every space a user may bring, through each adapter (gymnasium, PettingZoo, srljax's JaxEnv, gymnax) and
each algorithm: supported (steps with float32 observations and actions offset back by a Discrete
`start`; a short run trains) or refused with one line naming the env and the space
(`srljax.envs.space_check`), before anything is written. The table in docs/reliability.md
("Spaces by adapter") says which is which."""
import os
import subprocess
import sys
from pathlib import Path

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import space_envs as E

import srljax
from srljax import presets
from srljax.envs.pettingzoo_adapter import PettingZooVectorEnv
from srljax.envs.registry import make, make_vector
from srljax.envs.spaces import Box, Discrete, MultiDiscrete
from srljax.errors import UserError
from srljax.learners import registry

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def refused(fn, words):
    with pytest.raises(UserError) as info:
        fn()
    text = str(info.value)
    assert "\n" not in text and words in text, text
    return text


@pytest.mark.parametrize("obs, act, words", [
    ("tuple", "discrete", "observation space Tuple(Discrete(2), Box("),
    ("dict", "discrete", "observation space Dict('inner': Dict('bits': MultiBinary(3)"),
    ("multidiscrete", "discrete", "observation space MultiDiscrete([2 3])"),
    ("box", "tuple", "action space Tuple(Discrete(2), Box("),
    ("box", "dict", "action space Dict("),
    ("box", "box2d", "action space Box(-1.0, 1.0, (2, 2), float32) is not supported (Box actions need one axis"),
    ("box", "multibinary2d", "action space MultiBinary((2, 3)) is not supported (MultiBinary actions need one axis"),
])
def test_gymnasium_spaces_srljax_cannot_drive_are_one_line_naming_env_and_space(obs, act, words):
    text = refused(lambda: make_vector(E.env_id(obs, act), 2), f"env {E.env_id(obs, act)}: {words}")
    assert "srljax drives Box, MultiBinary and Discrete observations" in text
    assert ("FlattenObservation" in text) == (act == "discrete")          # the fix, for observations


def test_a_user_vector_env_or_factory_is_refused_by_the_same_check():
    vec = gymnasium.vector.SyncVectorEnv([lambda: E.SpaceEnv("tuple", "discrete")] * 2)
    refused(lambda: make_vector(vec), "env custom/SyncVectorEnv: observation space Tuple(")

    def tuples():
        return E.SpaceEnv("box", "tuple")
    refused(lambda: make_vector(tuples), "env custom/tuples: action space Tuple(")


def _plain(obs, act, seed):
    env = E.SpaceEnv(obs, act)
    return env, env.reset(seed=seed)[0]


@pytest.mark.parametrize("obs", ["image", "multibinary", "shifted", "unbounded"])
def test_gymnasium_observations_reach_srljax_as_float32(obs):
    env = make_vector(E.env_id(obs, "discrete"), 2, seed=3)
    got = env.reset(3)
    want = np.stack([_plain(obs, "discrete", 3 + i)[1] for i in range(2)])
    assert got.dtype == np.float32 and env.observation_space.shape == got.shape[1:]
    if obs == "shifted":              # Discrete(3, start=-1): one-hot of obs - start
        np.testing.assert_array_equal(got, np.eye(3, dtype=np.float32)[want + 1])
    else:                             # uint8 images, MultiBinary 0/1 and unbounded Boxes as floats
        np.testing.assert_array_equal(got, want.astype(np.float32))
    assert env.step(np.zeros(2, np.int64))[0].dtype == np.float32


@pytest.mark.parametrize("way", ["id", "sync vector env", "factory"])
def test_a_discrete_start_is_added_back_to_srljax_actions(way):
    made = []

    def factory():
        made.append(E.SpaceEnv("box", "shifted"))
        return made[-1]
    env = {"id": lambda: make_vector(E.env_id("box", "shifted"), 2),
           "sync vector env": lambda: make_vector(gymnasium.vector.SyncVectorEnv([factory] * 2)),
           "factory": lambda: make_vector(factory, 2)}[way]()
    assert env.action_space == Discrete(3)
    env.reset(0)
    env.step(np.array([0, 2]))
    envs = [e.unwrapped for e in env.env.envs] if way == "id" else made[-2:]
    assert [e.actions[-1] for e in envs] == [-1, 1]          # srljax's 0..2 are the env's -1..1


def test_multi_discrete_start_multibinary_and_unbounded_box_actions_pass_through():
    env = make_vector(E.env_id("box", "multishifted"), 1)
    assert env.action_space == MultiDiscrete((2, 3))
    env.reset(0)
    env.step(np.array([[0, 0]]))
    np.testing.assert_array_equal(env.env.envs[0].unwrapped.actions[-1], [1, -2])
    env = make_vector(E.env_id("box", "multibinary"), 1)
    assert env.action_space == MultiDiscrete((2, 2, 2, 2))
    env.reset(0)
    env.step(np.array([[1, 0, 1, 1]]))
    np.testing.assert_array_equal(env.env.envs[0].unwrapped.actions[-1], [1, 0, 1, 1])
    env = make_vector(E.env_id("unbounded", "unboundedact"), 1)
    assert np.isinf(env.action_space.low).all() and np.isinf(env.observation_space.high).all()
    env.reset(0)
    env.step(np.array([[1e6, -1e6]], np.float32))          # clipped to its (infinite) bounds: unchanged
    np.testing.assert_array_equal(env.env.envs[0].unwrapped.actions[-1], [1e6, -1e6])


def test_pettingzoo_agents_may_differ_in_observations_not_in_actions():
    env = PettingZooVectorEnv.from_factory(lambda: E.Agents(("box", "image", "shifted"), ("shifted",) * 3), 2)
    obs = env.reset(0)
    assert obs.dtype == np.float32 and obs.shape == (2, 3, 6 * 6 * 3 + 1)
    assert obs[0, 2, :3].sum() == 1.0 and not obs[0, 2, 3:-1].any()      # agent a2's Discrete: one-hot
    assert obs[:, 1, :-1].max() > 1.0                                      # a1's uint8 image as floats
    env.step(np.zeros((2, 3), np.int64))
    assert env._envs[0].actions[-1] == {"a0": -1, "a1": -1, "a2": -1}
    refused(lambda: PettingZooVectorEnv.from_factory(lambda: E.Agents(("box", "box"), ("shifted", "discrete"))),
            "env agents: agents have different action spaces (a0: Discrete(3, start=-1), a1: Discrete(3))")
    refused(lambda: PettingZooVectorEnv.from_factory(lambda: E.Agents(("box", "dict"), ("discrete",) * 2)),
            "env agents: agent a1's observation space Dict(")
    refused(lambda: PettingZooVectorEnv.from_factory(lambda: E.Agents(("box",), ("tuple",))),
            "env agents: agent a0's action space Tuple(")


def test_a_jax_env_with_uint8_observations_gets_float32():
    env = make(E.image_jax_env(), num_envs=2)
    state = jax.jit(lambda key: env.step(env.reset(key), jnp.ones(2, jnp.int32)))(jax.random.PRNGKey(0))
    assert state.obs.dtype == jnp.float32 and float(state.obs[0, 0, 0, 0]) == 60.0


@pytest.mark.parametrize("declared, words", [
    ({"obs_space": {"pos": gymnasium.spaces.Tuple((gymnasium.spaces.Discrete(2),))}},
     "observation 'pos' space Tuple(Discrete(2)) is not supported"),
    ({"obs_space": {"pos": Box(0, 1, (2,))}}, "reset returns observations of shape (4, 4, 1), its observation_space "
                                              "has a dict {'pos': shape (2,)}"),
    ({"obs_space": Discrete(3)}, "observation space Discrete(n=3) is not supported (a JaxEnv's observations"),
    ({"obs_space": Box(0, 255, (3,))}, "reset returns observations of shape (4, 4, 1), its observation_space "
                                       "has shape (3,)"),
    ({"action_space": Box(-1, 1, (2, 2))}, "action space Box(-1, 1, shape=(2, 2)) is not supported (Box actions"),
    ({"action_space": gymnasium.spaces.Tuple((gymnasium.spaces.Discrete(2),))}, "action space Tuple(Discrete(2))"),
    ({"action_space": gymnasium.spaces.Discrete(3, start=1)}, "action space Discrete(3, start=1) is not supported "
                                                              "(a JaxEnv's step gets the policy's actions in [0, n)"),
])
def test_a_jax_env_declaring_what_srljax_cannot_drive_is_one_line(declared, words):
    refused(lambda: make(E.image_jax_env(**declared), num_envs=2), f"env custom/ImageEnv: {words}")


def test_gymnax_spaces():
    from gymnax.environments import spaces as G
    box = G.Box(-1.0, 1.0, (3,), jnp.float32)
    refused(lambda: make(E.gymnax_env(G.Tuple([G.Discrete(2), box]), G.Discrete(2)), 2),
            "env custom/Declared: observation space Tuple(Discrete(2), Box(shape=(3,), dtype=float32)) is not "
            "supported")
    refused(lambda: make(E.gymnax_env(box, G.Dict({"x": G.Discrete(2)})), 2),
            "env custom/Declared: action space Dict('x': Discrete(2)) is not supported")
    unbounded = make(E.gymnax_env(G.Box(-jnp.inf, jnp.inf, (3,), jnp.float32), G.Box(-jnp.inf, jnp.inf, (1,))), 2)
    assert np.isinf(unbounded.action_space.high).all()
    lake = make("gymnax/FrozenLake-misc", num_envs=2)          # a Discrete(16) observation: one-hot
    obs = jax.jit(lake.reset)(jax.random.PRNGKey(0)).obs
    assert lake.observation_space.shape == (16,) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(obs.sum(axis=1), [1.0, 1.0])


UNBOUNDED = Box(np.full(2, -np.inf, np.float32), np.full(2, np.inf, np.float32), (2,))


@pytest.mark.parametrize("algorithm, config, action_space, words", [
    ("ppo", "cartpole", MultiDiscrete((2, 2, 2)), None),
    ("vtrace", "cartpole", UNBOUNDED, None),
    ("dqn", "cartpole_dqn", Discrete(3), None),
    ("dqn", "cartpole_dqn", MultiDiscrete((2, 2)), "dqn needs a discrete action space; env 'gymnax/CartPole-v1' "
                                                   "has MultiDiscrete(nvec=(2, 2)) actions"),
    ("sac", "pendulum_sac", Box(np.float32(-2), np.float32(2), (2,)), None),
    ("sac", "pendulum_sac", UNBOUNDED, "sac needs finite action bounds with high > low; env 'gymnax/Pendulum-v1' "
                                       "has Box(-inf, inf, shape=(2,)) actions"),
    ("sac", "pendulum_sac", Discrete(3), "sac needs a continuous (Box, one axis) action space"),
])
def test_each_algorithm_takes_or_refuses_each_action_space(algorithm, config, action_space, words):
    cfg = presets.get(config)
    obs = Box(np.full((6, 6, 3), 0, np.float32), np.full((6, 6, 3), 255, np.float32), (6, 6, 3))
    build = lambda: registry.get(algorithm).build(cfg, obs, action_space)     # noqa: E731
    if words is None:
        assert build() is not None
    else:
        refused(build, words)


# -- short runs: the learners on these observations, the env checking every action it gets ---------------
SMALL = {"env.num_envs": 4, "rollout.rollout_len": 8, "ppo.minibatches": 1, "ppo.epochs": 1, "total_env_steps": 256}
DIST = {**SMALL, "distributed.ring_size": 1, "distributed.posts_per_update": 1, "distributed.policy_workers": 0,
        "distributed.inline_inference": True, "distributed.stop_at_return": None}


def test_vtrace_trains_on_pettingzoo_agents_with_different_observations_and_a_discrete_start():
    result = srljax.train("gym_cartpole", overrides={**DIST, "algorithm.name": "vtrace"},
                          env=lambda: E.Agents(("box", "image", "shifted"), ("shifted",) * 3))
    assert result.summary["env_steps"] >= 256 and result.summary["updates"] >= 1


def test_dqn_trains_on_multibinary_observations_and_a_discrete_start():
    overrides = {**DIST, "dqn.learning_starts": 64, "dqn.buffer_size": 1000, "dqn.batch_size": 32,
                 "dqn.gradient_steps": 1, "env.id": E.env_id("multibinary", "shifted")}
    result = srljax.train("gym_cartpole_dqn", overrides=overrides)
    assert result.summary["gradient_steps"] >= 1


def test_ppo_trains_in_fused_mode_on_a_jax_env_with_uint8_images():
    result = srljax.train("cartpole", overrides={**SMALL, "log_every_env_steps": 128}, env=E.image_jax_env())
    assert result.summary["env_steps"] >= 256 and np.isfinite(result.summary["episode_return"])


# -- the command line: one line, exit 2, nothing written -----------------------------------------------
@pytest.mark.parametrize("config, env, words", [
    ("gym_cartpole", E.env_id("tuple", "discrete"), f"srljax: error: env {E.env_id('tuple', 'discrete')}: "
                                                    "observation space Tuple(Discrete(2), Box("),
    ("gym_pendulum_sac", E.env_id("box", "unboundedact"), "srljax: error: sac needs finite action bounds"),
])
def test_the_command_line_refuses_in_one_line_and_writes_nothing(config, env, words, subprocess_env, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "--config", config, "--set", f"env.id={env}",
           "--run-dir", str(run)]
    child = {**subprocess_env, "PYTHONPATH": os.pathsep.join([str(HERE), subprocess_env["PYTHONPATH"]])}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=child)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith(words), out.stderr[-3000:]
    assert not run.exists()
