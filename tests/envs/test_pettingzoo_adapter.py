"""The PettingZoo ParallelEnv adapter: agent axis after the env axis, a presence column that masks
agents that are done, per-agent rewards, auto-reset; and a short distributed run on mpe2."""
import numpy as np
import pytest

from srljax.dataflow.roles.multiagent import learner_batch
from srljax.envs import spaces
from srljax.envs.custom import user_env
from srljax.envs.pettingzoo_adapter import PettingZooVectorEnv
from srljax.errors import UserError


class Leaving:
    """A ParallelEnv written for this test: agent k leaves (terminates) after k + 2 steps; each step
    pays an agent its action (0 or 1). Agent k observes (t, k) and agent 2 a third value."""

    metadata = {"name": "leaving"}

    def __init__(self):
        import gymnasium
        self.possible_agents = ["a0", "a1", "a2"]
        self._obs = {a: gymnasium.spaces.Box(-10, 10, (2 + (a == "a2"),)) for a in self.possible_agents}
        self._act = gymnasium.spaces.Discrete(2)

    def observation_space(self, agent):
        return self._obs[agent]

    def action_space(self, agent):
        return self._act

    def _observe(self):
        return {a: np.array([self.t, k] + [7.0] * (a == "a2"), np.float32)
                for k, a in enumerate(self.possible_agents) if a in self.agents}

    def reset(self, seed=None, options=None):
        self.t, self.agents = 0, list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions):
        assert set(actions) == set(self.agents), (actions, self.agents)      # the gone get no actions
        self.t += 1
        rewards = {a: float(actions[a]) for a in self.agents}
        term = {a: self.t >= k + 2 for k, a in enumerate(self.possible_agents) if a in self.agents}
        obs = self._observe()
        self.agents = [a for a in self.agents if not term[a]]
        return obs, rewards, term, {a: False for a in term}, {a: {} for a in term}

    def close(self):
        pass


def test_agents_after_the_env_axis_with_a_presence_column():
    env = user_env(Leaving, num_envs=2, seed=0)        # a factory of ParallelEnvs
    assert isinstance(env, PettingZooVectorEnv) and env.num_agents == 3
    assert env.action_space == spaces.Discrete(2) and env.observation_space.shape == (4,)
    obs = env.reset(0)
    assert obs.shape == (2, 3, 4) and (obs[..., -1] == 1).all()
    np.testing.assert_array_equal(obs[0, 2], [0, 2, 7, 1])      # padded to the widest agent, presence last
    np.testing.assert_array_equal(obs[0, 0], [0, 0, 0, 1])
    returns = []
    for t in range(1, 9):
        actions = np.ones((2, 3), np.int32)
        obs, reward, term, trunc, info = env.step(actions)
        assert reward.shape == (2, 3) and term.shape == trunc.shape == (2,)
        step = (t - 1) % 4 + 1                              # episodes of 4 steps (agent a2 leaves last)
        np.testing.assert_array_equal(reward[0], [float(step <= k + 2) for k in range(3)])
        if step < 4:
            np.testing.assert_array_equal(obs[0, :, -1], [float(step < k + 2) for k in range(3)])
            gone = [k for k in range(3) if step >= k + 2]
            assert (obs[0, gone] == 0).all()                # a done agent's slot: zeros, presence 0
            assert not term.any()
            leaving = step == np.arange(3) + 2                  # agents terminating on this step
            np.testing.assert_array_equal(info["final_obs"][0, :, -1], (step < np.arange(3) + 2) * 1.0)
            assert (info["final_obs"][0, leaving, :2] != 0).any() or step == 1
        else:                                               # the last agent left: reset at once
            assert term.all() and not trunc.any()
            assert (obs[..., -1] == 1).all() and (obs[:, :, 0] == 0).all()
            np.testing.assert_array_equal(info["final_obs"][0, 2], [4, 2, 7, 0])   # a2 terminated: it left
            returns += [ep["return"] for ep in info["episodes"]]
    assert returns == [3.0] * 4                            # (2 + 3 + 4) / 3 agents, per episode


def test_the_presence_column_masks_the_learner_weight():
    obs = np.zeros((5, 2, 3, 4), np.float32)
    obs[..., -1] = 1.0
    obs[2:, 1, 0, -1] = 0.0                                 # env 1's agent 0 gone from t = 2
    batch = {"obs": obs, "final_obs": obs, "learn": np.ones((5, 2, 3), np.float32)}
    final = obs.copy()
    final[1, 1, 0, -1] = 0.0                                # ... it left on step 1 (terminated)
    batch["final_obs"], batch["terminated"] = final, np.zeros((5, 2), np.float32)
    batch["terminated"][4, 0] = 1.0                         # env 0's episode ended on the last step
    out = learner_batch(batch, None, presence_key=-1)
    assert out["learn"].sum() == 30 - 3 and (out["learn"][2:, 1, 0] == 0).all()
    expected = np.zeros((5, 2, 3), np.float32)
    expected[1:, 1, 0] = 1.0                                # that agent's own termination: no bootstrap (and
                                                            # its empty slot's steps after, not learned from)
    expected[4, 0, :] = 1.0                                 # the env's, for every agent
    np.testing.assert_array_equal(out["terminated"], expected)


def test_pz_names_import_their_module():
    with pytest.raises(UserError, match="cannot import"):
        PettingZooVectorEnv.from_module("no_such_pz_module_xyz")


def test_mpe2_simple_spread_trains_in_process_briefly_and_plays_back(tmp_path):
    pytest.importorskip("mpe2")
    import srljax
    from srljax import playback
    from srljax.checkpoint import Checkpointer
    overrides = {"env.num_envs": 8, "rollout.rollout_len": 20, "distributed.actors": 1, "total_env_steps": 1_600,
                 "log_every_env_steps": 400}
    result = srljax.train("pz_simple_spread", overrides=overrides, run_dir=str(tmp_path / "run"))
    assert result.summary["env_steps"] >= 1_600 and result.summary["episode_return"] < 0    # MPE pays distances
    assert result.config.env.id == "pz/mpe2.simple_spread_v3"
    # srljax-evaluate's path: the checkpoint plays 2 episodes and env 0's first is drawn by mpe2's renderer
    ckpt = Checkpointer(tmp_path / "run").latest()
    got = playback.play_checkpoint(result.config, ckpt, 2, 0, str(tmp_path / "spread.gif"))
    assert got["episodes"] == 2 and got["return_max"] < 0 and got["video_frames"] == 25
