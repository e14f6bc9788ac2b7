"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=4 (see test_fused_sharding_shapes.py).

A multi-agent env (JaxMARL's MPE simple_spread, 3 agents, one shared policy), feedforward and with
an LSTM: one PPO update on the same global batch [T, B, A, ...] on 4 devices and on 1 device (with
per-agent ends and absent agents: `terminated` and `learn` [T, B, A], as SMAX gives them); then
a fused run on 4 devices, whose replicas must stay identical. Prints one JSON line.
"""
import json

import jax
import numpy as np

from srljax import config, presets
from sharded_compare import max_diff, replica_spread, update_on_one_and_four
from srljax.dataflow.fused.rollout import FusedTrainer
from srljax.envs import make
from srljax.learners import make_algorithm

assert jax.local_device_count() == 4, jax.devices()
D, T, B, L, A = 4, 16, 8, 8, 3
env = make("jaxmarl/MPE_simple_spread_v3")
out = {}
for core in ("feedforward", "lstm"):
    cfg = config.override(presets.get("mpe_simple_spread"), {
        "env.num_envs": B, "rollout.rollout_len": T, "rollout.chunk_len": L, "ppo.minibatches": 4, "ppo.epochs": 2,
        "network.core": core, "network.hidden": [32, 32], "total_env_steps": 20 * T * B})
    one = make_algorithm(cfg, env.observation_space, env.action_space)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(T + 1, B, A, 18)).astype(np.float32)
    ended = rng.random((T, B)) < 0.1
    ended[-1] = True
    final = np.where(ended[:, :, None, None], rng.normal(size=(T, B, A, 18)).astype(np.float32), obs[1:])
    batch = {"obs": obs[:-1], "final_obs": final, "action": rng.integers(0, 5, size=(T, B, A)).astype(np.int32),
             "logp": np.full((T, B, A), np.log(0.2), np.float32), "reward": rng.normal(size=(T, B, A)).astype(np.float32),
             "terminated": (rng.random((T, B, A)) < 0.05).astype(np.float32), "truncated": ended.astype(np.float32),
             "learn": (rng.random((T, B, A)) > 0.1).astype(np.float32)}
    if core != "feedforward":
        batch["first"] = (rng.random((T, B)) < 0.1).astype(np.float32)
        batch["state"] = rng.normal(size=(T // L, B, A, one.model.state_size)).astype(np.float32)
    state, s1, m1, s4, m4 = update_on_one_and_four(cfg, env, batch)
    diff, moved = max_diff(s4.params, s1.params), max_diff(s1.params, state.params)
    trainer = FusedTrainer(cfg)
    fs, metrics = trainer.chunk(trainer.init(0), 3)
    spread = replica_spread(fs)
    out[core] = {"param_diff": diff, "moved": moved, "device_spread": spread, "updates": metrics["updates"],
                 "obs_shape": list(np.shape(fs.env.obs)),
                 "carry_shape": list(np.shape(fs.memory[0])) if fs.memory is not None else None}
print(json.dumps(out))
