"""JaxMARL's SMAX in fused mode: agents that end before their episode (killed units) terminate alone
and are absent afterwards (`agent_done`, `learn`), the env's own world state feeds the critic, a
SMAX map is named by its string, and MAPPO trains on it."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import srljax
from srljax.envs import make
from srljax.errors import UserError

B = 64


@pytest.fixture(scope="module")
def smax():
    return make("jaxmarl/HeuristicEnemySMAX", num_envs=B, scenario="3m", world_state=True)


def _play(env, steps, seed=0):
    """Random play: per step, (agent_done, learn, episode_ended, env done, rollout record's terminated)."""
    from srljax.dataflow.fused.rollout import FusedTrainer

    @jax.jit
    def step(s, k):
        a = jax.random.randint(k, (B, env.num_agents), 0, env.action_space.n)
        nxt = env.step(s, a)
        out, _ = FusedTrainer._step_record(s, nxt, a, jnp.zeros((B, env.num_agents)))
        return nxt, (nxt.metrics["agent_done"], nxt.metrics["learn"], nxt.metrics["episode_ended"],
                     nxt.done, out["terminated"])

    _, seq = jax.lax.scan(step, jax.jit(env.reset)(jax.random.PRNGKey(seed)), jax.random.split(jax.random.PRNGKey(seed + 1), steps))
    return [np.asarray(x) for x in seq]


def test_a_killed_unit_terminates_alone_and_is_absent_until_its_episode_ends(smax):
    assert smax.num_agents == 3 and smax.teams is None and smax.agent_dones
    agent_done, learn, ended, done, terminated = _play(smax, 80)
    assert terminated.shape == (80, B, 3)
    deaths = 0
    for e in range(B):
        present = np.ones(3, bool)
        for t in range(80):
            np.testing.assert_array_equal(learn[t, e], present.astype(np.float32))   # learned while present
            assert not (agent_done[t, e] & ~present).any()                           # ends once
            early = agent_done[t, e] & (ended[t, e] == 0)
            deaths += int(early.sum())
            np.testing.assert_array_equal(terminated[t, e] > 0, agent_done[t, e] | done[t, e])   # alone, or all
            present &= ~agent_done[t, e]
            if ended[t, e]:
                present[:] = True                                                      # a new episode: all back
    assert deaths > 20, deaths                         # random play loses units before the episode ends


def test_the_critic_reads_the_envs_own_world_state(smax):
    """SMAX's world state (72 numbers: every unit's features, teams and types), plus whose value it is."""
    assert smax.observation_space["obs"].shape == (75,) and smax.observation_space["state"].shape == (72 + 3,)
    state = jax.jit(smax.reset)(jax.random.PRNGKey(3))
    world = np.asarray(state.obs["state"])
    np.testing.assert_array_equal(world[:, 0, :72], world[:, 2, :72])
    np.testing.assert_array_equal(world[0, :, 72:], np.eye(3))
    inner = state.inner[0][0][0]          # EpisodeStats' and AutoReset's nesting, then the adapter's own
    own = jax.vmap(smax._env.get_world_state)(inner)
    np.testing.assert_allclose(world[:, 0, :72], np.asarray(own), rtol=1e-6)


def test_a_smax_map_is_named_by_its_string_and_an_unknown_one_is_one_line():
    with pytest.raises(UserError, match="unknown SMAX scenario 'nope'.*3m"):
        make("jaxmarl/HeuristicEnemySMAX", num_envs=2, scenario="nope")
    with pytest.raises(UserError, match="names a SMAX map"):
        make("jaxmarl/MPE_simple_spread_v3", num_envs=2, scenario="3m")
    spread = make("jaxmarl/MPE_simple_spread_v3", num_envs=2)
    assert not spread.agent_dones and "agent_done" not in jax.jit(spread.reset)(jax.random.PRNGKey(0)).metrics


def test_mappo_trains_on_smax_3m(tmp_path):
    overrides = {"total_env_steps": 65_536, "log_every_env_steps": 16_384, "env.num_envs": 32,
                 "rollout.rollout_len": 32, "network.hidden": [32, 32]}
    result = srljax.train("smax_3m", overrides=overrides, run_dir=str(tmp_path / "run"))
    rows = result.history
    assert result.summary["updates"] == 64 and all(np.isfinite(r["loss"]) for r in rows), rows
    assert rows[-1]["episode_return"] > rows[0]["episode_return"], [r["episode_return"] for r in rows]
