"""JaxMARL's multi-agent JAX envs in fused mode (`jaxmarl/NAME`): the adapter's agent axis, rewards
and time-limit truncation, one shared policy learning MPE simple_spread, and self-play in a
two-team game (simple_tag) with each team's return reported."""
import jax
import jax.numpy as jnp
import numpy as np

import srljax
from srljax.envs import make


def test_the_adapter_stacks_agents_after_the_env_axis_and_truncates_at_the_step_limit():
    env = make("jaxmarl/MPE_simple_spread_v3", num_envs=4, max_steps=24)     # 25 steps, as PettingZoo's
    assert env.num_agents == 3 and env.teams is None and env.observation_space.shape == (18,)
    step = jax.jit(lambda s, a: env.step(s, a))
    state = jax.jit(env.reset)(jax.random.PRNGKey(0))
    assert state.obs.shape == (4, 3, 18) and state.reward.shape == (4, 3)
    summed = np.zeros((4, 3))
    for t in range(25):
        assert not bool(state.truncated.any())
        state = step(state, jnp.full((4, 3), t % 5, jnp.int32))
        summed += np.asarray(state.reward)
    assert bool(state.truncated.all()) and not bool(state.done.any())       # MPE's 25-step limit: bootstrapped
    m = state.metrics
    np.testing.assert_allclose(np.asarray(m["episode_return"]), summed.mean(axis=1), rtol=1e-5)
    assert np.asarray(m["episode_ended"]).tolist() == [1.0] * 4 and np.asarray(m["episode_length"]).tolist() == [25.0] * 4


def test_one_shared_policy_learns_simple_spread_and_its_checkpoint_plays(tmp_path):
    from srljax.checkpoint import Checkpointer
    from srljax.playback import play_checkpoint
    result = srljax.train("mpe_simple_spread", overrides={"total_env_steps": 122_880, "log_every_env_steps": 20_480},
                          run_dir=str(tmp_path / "run"))
    first, last = result.history[0]["episode_return"], result.summary["episode_return"]
    assert last > first + 2.0, (first, last)                                  # about -25 -> -20 here
    gif = tmp_path / "spread.gif"
    out = play_checkpoint(result.config, Checkpointer(tmp_path / "run").latest(), episodes=8, seed=0, video=str(gif))
    assert out["episodes"] == 8 and -40 < out["return_mean"] < -5, out
    assert out["video_frames"] == 25 and gif.stat().st_size > 1000, out          # one 25-step episode
    from PIL import Image
    frame = np.asarray(Image.open(gif).convert("RGB"))
    assert frame.shape == (240, 240, 3) and len(np.unique(frame.reshape(-1, 3), axis=0)) >= 3   # white, agents, landmarks


def test_a_world_state_gives_a_centralised_critic():
    """`world_state`: the policy reads the agent's own 18 numbers, the critic all 3 agents' 54 and
    a one-hot of whose value it is."""
    from srljax import config, presets
    from srljax.dataflow.fused.rollout import FusedTrainer
    from srljax.envs.spaces import WorldState
    cfg = config.override(presets.get("mpe_simple_spread"), {
        "env.kwargs": {"max_steps": 24, "world_state": True}, "env.num_envs": 4, "rollout.rollout_len": 8,
        "ppo.minibatches": 2, "network.hidden": [16, 16]})
    trainer = FusedTrainer(cfg)
    assert isinstance(trainer.env.observation_space, WorldState)
    fs, m = trainer.chunk(trainer.init(0), 2)
    assert fs.env.obs["obs"].shape == (1, 4, 3, 18) and fs.env.obs["state"].shape == (1, 4, 3, 57)
    world = np.asarray(fs.env.obs["state"][0])
    np.testing.assert_array_equal(world[:, 0, :54], world[:, 2, :54])
    np.testing.assert_array_equal(world[:, 1, :54].reshape(4, 3, 18)[:, 1], np.asarray(fs.env.obs["obs"][0, :, 1]))
    np.testing.assert_array_equal(world[0, :, 54:], np.eye(3))
    params = fs.learner.params["params"]
    assert params["policy_torso"]["Dense_0"]["kernel"].shape[1:] == (18, 16)
    assert params["value_torso"]["Dense_0"]["kernel"].shape[1:] == (57, 16)
    assert m["updates"] == 2 and np.isfinite(m["loss"])


def test_two_teams_play_by_self_play_and_report_their_returns():
    env = make("jaxmarl/MPE_simple_tag_v3", num_envs=2)
    assert env.teams == (0, 0, 0, 1)                                           # 3 adversaries, 1 good agent
    assert env.observation_space.shape == (16 + 2,)                            # padded, plus the team one-hot
    overrides = {"env.id": "jaxmarl/MPE_simple_tag_v3", "total_env_steps": 40_960, "log_every_env_steps": 10_240,
                 "env.num_envs": 16}
    result = srljax.train("mpe_simple_spread", overrides=overrides)
    rows = result.history
    chasers = [r["episode_return_team0"] for r in rows]
    runner = [r["episode_return_team1"] for r in rows]
    assert all(np.isfinite(chasers + runner)), rows
    assert chasers[-1] != chasers[0] and runner[-1] != runner[0], (chasers, runner)


def test_random_opponents_replace_one_team_per_episode_and_are_not_learned_from():
    """simple_tag with random_opponents=1: every episode one team, drawn at random, acts uniformly at
    random (`learn` 0 for it); with 0.5 about half the episodes have one; a one-team game refuses."""
    import pytest

    from srljax.errors import UserError
    env = make("jaxmarl/MPE_simple_tag_v3", num_envs=256, random_opponents=1.0)
    learn = np.asarray(jax.jit(env.reset)(jax.random.PRNGKey(0)).metrics["learn"])          # [256, 4]
    chasers_random = (learn[:, :3] == 0).all(axis=1) & (learn[:, 3] == 1)
    runner_random = (learn[:, :3] == 1).all(axis=1) & (learn[:, 3] == 0)
    assert (chasers_random | runner_random).all() and 0.35 < chasers_random.mean() < 0.65
    state = jax.jit(lambda s: env.step(s, jnp.zeros((256, 4), jnp.int32)))(jax.jit(env.reset)(jax.random.PRNGKey(0)))
    np.testing.assert_array_equal(np.asarray(state.metrics["learn"]), learn)                # the same episode
    half = make("jaxmarl/MPE_simple_tag_v3", num_envs=256, random_opponents=0.5)
    some = (np.asarray(jax.jit(half.reset)(jax.random.PRNGKey(1)).metrics["learn"]) == 0).any(axis=1).mean()
    assert 0.35 < some < 0.65
    with pytest.raises(UserError, match="random_opponents needs a two-team game"):
        make("jaxmarl/MPE_simple_spread_v3", num_envs=2, random_opponents=0.5)

    overrides = {"env.id": "jaxmarl/MPE_simple_tag_v3", "env.kwargs": {"random_opponents": 0.5},
                 "total_env_steps": 20_480, "log_every_env_steps": 10_240, "env.num_envs": 16}
    result = srljax.train("mpe_simple_spread", overrides=overrides)
    assert result.summary["updates"] == 32 and np.isfinite(result.history[-1]["loss"])
