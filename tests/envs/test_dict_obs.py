"""Dict observations in fused mode: a gymnax-style env whose observation space is a (nested)
`spaces.Dict` trains with PPO and with DQN through `srljax.train(cfg, env=...)`; srljax's own
`JaxEnv` protocol takes a dict of Boxes; a space srljax cannot drive is one line (exit 2 on the
command line, where `jax/MODULE:ATTR` names such an env)."""
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
from dict_envs import cue_env, entity_team_env, reach_env

import srljax
from srljax.errors import UserError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


PPO = {"env.num_envs": 8, "rollout.rollout_len": 16, "total_env_steps": 8192, "log_every_env_steps": 2048,
       "ppo.lr": 3e-3}
DQN = {"env.num_envs": 8, "total_env_steps": 6000, "log_every_env_steps": 2000, "dqn.learning_starts": 500,
       "dqn.epsilon_decay_steps": 2000, "dqn.train_every": 1, "dqn.buffer_size": 4000}


def test_the_adapter_makes_a_dict_space_of_float_boxes_and_observations_to_match():
    from srljax.envs.custom import jax_env
    env = jax_env(cue_env(), 4)
    space = env.observation_space
    assert set(space) == {"cue", "extra"} and set(space["extra"]) == {"noise", "step"}
    assert space["cue"].shape == (2,) and space["extra"]["noise"].shape == (2, 3)
    obs = env.reset(jax.random.PRNGKey(0)).obs
    assert obs["cue"].shape == (4, 2) and obs["cue"].dtype == jnp.float32          # one-hot
    assert obs["extra"]["noise"].shape == (4, 2, 3) and obs["extra"]["step"].shape == (4,)


@pytest.mark.parametrize("preset, overrides", [("cartpole", PPO), ("cartpole_dqn", DQN)], ids=["ppo", "dqn"])
def test_a_gymnax_env_with_dict_observations_trains_fused(preset, overrides, tmp_path):
    result = srljax.train(preset, overrides=overrides, env=cue_env(), run_dir=str(tmp_path / "run"))
    last = result.summary["episode_return"]
    assert last > 0.9, result.summary           # reads the cue: a blind policy scores 0.5
    assert (tmp_path / "run" / "config.json").is_file()


def test_a_srljax_jax_env_with_a_dict_of_boxes_trains_fused():
    from srljax.envs.core import JaxEnv, State
    from srljax.envs.spaces import Box, Discrete

    class Pair(JaxEnv):
        """One-step episodes: pay 1 for the action `obs["a"] > obs["b"]`."""
        observation_space = {"a": Box(0.0, 1.0, (1,)), "b": Box(0.0, 1.0, (1,))}
        action_space = Discrete(2)

        def reset(self, key):
            ka, kb = jax.random.split(key)
            obs = {"a": jax.random.uniform(ka, (1,)), "b": jax.random.uniform(kb, (1,))}
            return State(obs=obs, final_obs=obs, reward=jnp.float32(0), done=jnp.bool_(False),
                         truncated=jnp.bool_(False), inner=jnp.int32(0), metrics={})

        def step(self, state, action):
            right = (state.obs["a"][0] > state.obs["b"][0]).astype(jnp.int32)
            return state.replace(reward=(action == right).astype(jnp.float32), done=jnp.bool_(True))

    result = srljax.train("cartpole", overrides={**PPO, "total_env_steps": 16_384}, env=Pair())
    assert result.summary["episode_return"] > 0.85, result.summary


def test_an_unsupported_space_inside_a_dict_is_one_line():
    from dict_envs import tuple_cue_env
    with pytest.raises(UserError) as err:
        srljax.train("cartpole", overrides=PPO, env=tuple_cue_env())
    line = str(err.value)
    assert "\n" not in line and "observation 'pair' space Tuple(Discrete(2), Discrete(3)) is not supported" in line


def test_a_jax_env_whose_reset_breaks_its_dict_space_is_one_line():
    from srljax.envs.core import JaxEnv, State
    from srljax.envs.spaces import Box, Discrete

    class Liar(JaxEnv):
        observation_space = {"a": Box(0.0, 1.0, (2,))}
        action_space = Discrete(2)

        def reset(self, key):
            obs = {"a": jnp.zeros((3,))}
            return State(obs=obs, final_obs=obs, reward=jnp.float32(0), done=jnp.bool_(False),
                         truncated=jnp.bool_(False), inner=jnp.int32(0), metrics={})

    with pytest.raises(UserError, match=r"reset returns observations of a dict \{'a': shape \(3,\)\}, its "
                                        r"observation_space has a dict \{'a': shape \(2,\)\}"):
        srljax.train("cartpole", overrides=PPO, env=Liar())


def _cli(script, args, subprocess_env):
    child = {**subprocess_env, "PYTHONPATH": os.pathsep.join([str(HERE), subprocess_env["PYTHONPATH"]])}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *args], capture_output=True, text=True,
                          timeout=300, env=child)


def test_the_command_line_trains_and_evaluates_an_own_dict_env_and_refuses_a_bad_one(subprocess_env, tmp_path):
    run = tmp_path / "run"
    sets = [a for k, v in {**PPO, "env.id": "jax/dict_envs:cue_env"}.items() for a in ("--set", f"{k}={v}")]
    out = _cli("train.py", ["--config", "cartpole", *sets, "--run-dir", str(run), "--quiet"], subprocess_env)
    assert out.returncode == 0, out.stderr[-3000:]
    out = _cli("evaluate.py", ["--run-dir", str(run), "--episodes", "8"], subprocess_env)
    assert out.returncode == 0 and "return" in out.stdout, (out.stdout, out.stderr[-3000:])

    for env_id, words in [("jax/dict_envs:tuple_cue_env", "srljax: error: env jax/dict_envs:tuple_cue_env: observation "
                                                          "'pair' space Tuple(Discrete(2), Discrete(3)) is not supported"),
                          ("jax/no_such_module:Env", "srljax: error: env 'jax/no_such_module:Env': cannot import module "
                                                     "'no_such_module'"),
                          ("jax/dict_envs", "srljax: error: env 'jax/dict_envs': jax/ takes MODULE:ATTR")]:
        bad = tmp_path / "bad"
        out = _cli("train.py", ["--config", "cartpole", "--set", f"env.id={env_id}", "--run-dir", str(bad)],
                   subprocess_env)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith(words), out.stderr[-3000:]
        assert not bad.exists()


def test_sac_trains_on_a_dict_observation_with_a_box_action():
    overrides = {"env.num_envs": 4, "total_env_steps": 3000, "log_every_env_steps": 1000, "sac.learning_starts": 200}
    result = srljax.train("pendulum_sac", overrides=overrides, env=reach_env())
    first, last = result.history[0]["episode_return"], result.summary["episode_return"]
    assert last > -0.2 and last > first, (first, last)        # a uniform action scores about -0.67


def test_an_env_declaring_entities_gets_the_entity_network_fused_with_a_carry_per_agent():
    from srljax.dataflow.fused.rollout import FusedTrainer
    from srljax import config, presets
    from srljax.learners.entity_net import EntityActorCritic
    cfg = config.override(presets.get("cartpole"), {"env.num_envs": 4, "rollout.rollout_len": 16,
                                                    "rollout.chunk_len": 8, "network.hidden": [16, 32]})
    trainer = FusedTrainer(cfg, env=entity_team_env())
    assert isinstance(trainer.algo.model.network, EntityActorCritic) and trainer.recurrent
    fs, m = trainer.chunk(trainer.init(0), 3)
    assert m["updates"] == 3 and jnp.isfinite(m["loss"]), m
    assert fs.memory[0].shape == (1, 4 * 2, 64)                      # [devices, envs x agents, LSTM (c, h)]
    assert fs.env.obs["boxes"].shape == (1, 4, 2, 2, 2)
