"""brax envs with dict observations in fused mode: a plain dict gets an MLP over its leaves, and
`{"state", "privileged_state"}` (MuJoCo Playground's convention) an asymmetric actor-critic."""
import numpy as np
import pytest
from brax import envs as brax_envs
from brax.envs.base import Wrapper

from srljax import config, presets
from srljax.dataflow.fused.rollout import FusedTrainer
from srljax.envs import make
from srljax.envs.spaces import Box, WorldState


class _DictObs(Wrapper):
    """inverted_pendulum (4 numbers: cart position, pole angle, their velocities) with its
    observation split into a dict of the given `layout` (key -> index list, or a nested dict)."""

    layout: dict = {}

    def __init__(self, backend="generalized", **kwargs):
        super().__init__(brax_envs.get_environment("inverted_pendulum", backend=backend, **kwargs))

    def _split(self, obs, layout):
        return {k: (self._split(obs, v) if isinstance(v, dict) else obs[np.array(v)]) for k, v in layout.items()}

    def reset(self, rng):
        state = self.env.reset(rng)
        return state.replace(obs=self._split(state.obs, self.layout))

    def step(self, state, action):
        nxt = self.env.step(state.replace(obs=self._whole(state)), action)
        return nxt.replace(obs=self._split(nxt.obs, self.layout))

    def _whole(self, state):
        # the wrapped env's step reads only its pipeline state: its own observation is recomputed
        return self.env._get_obs(state.pipeline_state)


class _Nested(_DictObs):
    layout = {"positions": [0, 1], "more": {"velocities": [2, 3]}}


class _Asymmetric(_DictObs):
    layout = {"state": [0, 1], "privileged_state": [0, 1, 2, 3]}


brax_envs.register_environment("srljax_test_nested_dict", _Nested)
brax_envs.register_environment("srljax_test_asymmetric", _Asymmetric)


def _trainer(name):
    cfg = config.override(presets.get("brax_inverted_pendulum"), {
        "env.id": f"brax/{name}", "env.num_envs": 4, "rollout.rollout_len": 8, "ppo.minibatches": 2,
        "network.hidden": [16, 16]})
    return FusedTrainer(cfg)


@pytest.mark.parametrize("name", ["srljax_test_nested_dict", "srljax_test_asymmetric"])
def test_brax_dict_observations_train_fused(name):
    trainer = _trainer(name)
    space = trainer.env.observation_space
    fs, m = trainer.chunk(trainer.init(0), 2)
    assert m["updates"] == 2 and np.isfinite(m["loss"])
    params = fs.learner.params["params"]
    if name == "srljax_test_asymmetric":
        assert isinstance(space, WorldState) and space["obs"].shape == (2,) and space["state"].shape == (4,)
        assert fs.env.obs["obs"].shape == (1, 4, 2) and fs.env.obs["state"].shape == (1, 4, 4)
        np.testing.assert_array_equal(np.asarray(fs.env.obs["obs"]), np.asarray(fs.env.obs["state"][..., :2]))
        assert params["policy_torso"]["Dense_0"]["kernel"].shape[1:] == (2, 16)
        assert params["value_torso"]["Dense_0"]["kernel"].shape[1:] == (4, 16)
    else:
        assert not isinstance(space, WorldState) and space["positions"] == Box(-np.inf, np.inf, (2,))
        assert space["more"]["velocities"].shape == (2,)
        assert fs.env.obs["more"]["velocities"].shape == (1, 4, 2)
        for torso in ("policy_torso", "value_torso"):                  # both leaves (2 + 2), flattened
            assert params[torso]["Dense_0"]["kernel"].shape[1:] == (4, 16)


def test_brax_dict_observation_space_is_read_from_the_reset():
    env = make("brax/srljax_test_asymmetric", num_envs=2)
    assert isinstance(env.observation_space, WorldState)
