"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=4 (see test_fused_sharding_shapes.py).

A recurrent policy (network.core=lstm, chunks of 8 steps): one PPO update on the same global batch
on 4 devices and on 1 device; then a fused run on 4 devices, whose replicas must stay identical.
Prints one JSON line.
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
D, T, B, L = 4, 16, 8, 8
cfg = config.override(presets.get("cartpole"), {
    "env.num_envs": B, "rollout.rollout_len": T, "rollout.chunk_len": L, "ppo.minibatches": 4, "ppo.epochs": 2,
    "ppo.normalize_obs": True, "network.core": "lstm", "network.hidden": [32, 32], "total_env_steps": 20 * T * B})

env = make("gymnax/CartPole-v1")
one = make_algorithm(cfg, env.observation_space, env.action_space)
S = one.model.state_size
rng = np.random.default_rng(0)
batch = {
    "obs": rng.normal(size=(T, B, 4)).astype(np.float32),
    "final_obs": rng.normal(size=(T, B, 4)).astype(np.float32),
    "action": rng.integers(0, 2, size=(T, B)).astype(np.int32),
    "logp": np.full((T, B), np.log(0.5), np.float32),
    "reward": np.ones((T, B), np.float32),
    "terminated": (rng.random((T, B)) < 0.05).astype(np.float32),
    "truncated": (rng.random((T, B)) < 0.05).astype(np.float32),
    "first": (rng.random((T, B)) < 0.1).astype(np.float32),
    "state": rng.normal(size=(T // L, B, S)).astype(np.float32),
}
# as a rollout makes it: final_obs_t is obs_{t+1} wherever the episode went on (the critic values
# only the other rows on their own, `returns.bootstrap_values`)
ended = np.maximum(batch["terminated"], batch["truncated"]) > 0
ended[-1] = True
batch["final_obs"] = np.where(ended[..., None], batch["final_obs"], np.roll(batch["obs"], -1, axis=0))
state, s1, m1, s4, m4 = update_on_one_and_four(cfg, env, batch)
diff, moved = max_diff(s4.params, s1.params), max_diff(s1.params, state.params)

trainer = FusedTrainer(cfg)
fs = trainer.init(0)
fs, metrics = trainer.chunk(fs, 5)
spread = replica_spread(fs)
carry, first = (np.asarray(x) for x in fs.memory)
print(json.dumps({"param_diff": diff, "moved": moved, "device_spread": spread, "updates": metrics["updates"],
                  "carry_shape": list(carry.shape), "carry_spread": float(np.max(np.abs(carry - carry[:1]))),
                  "loss_diff": abs(float(m4["loss"]) - float(m1["loss"]))}))
