"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=4 (see test_sharding.py).

Prints one JSON line: max |params(4 devices) - params(1 device)| after one update on the same global
batch, and the max spread of parameters across devices after several fused updates.
"""
import json

import jax
import numpy as np

from srljax import config, presets

from sharded_compare import max_diff, replica_spread, update_on_one_and_four
from srljax.dataflow.fused.rollout import FusedTrainer

assert jax.local_device_count() == 4, jax.devices()
D, T, B = 4, 16, 8
cfg = config.override(presets.get("cartpole"), {
    "env.num_envs": B, "rollout.rollout_len": T, "ppo.minibatches": 4, "ppo.epochs": 2, "ppo.normalize_obs": True,
    "total_env_steps": 20 * T * B})

rng = np.random.default_rng(0)
batch = {
    "obs": rng.normal(size=(T, B, 4)).astype(np.float32),
    "final_obs": rng.normal(size=(T, B, 4)).astype(np.float32),
    "action": rng.integers(0, 2, size=(T, B)).astype(np.int32),
    "logp": np.full((T, B), np.log(0.5), np.float32),
    "reward": np.ones((T, B), np.float32),
    "terminated": (rng.random((T, B)) < 0.05).astype(np.float32),
    "truncated": (rng.random((T, B)) < 0.05).astype(np.float32),
}

from srljax.envs import make
env = make("gymnax/CartPole-v1")
state, s1, m1, s4, m4 = update_on_one_and_four(cfg, env, batch)
diff = max_diff(s4.params, s1.params)
norm_diff = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / (np.abs(np.asarray(b)) + 1e-6)))
                for a, b in zip(jax.tree.leaves(s4.obs_norm), jax.tree.leaves(s1.obs_norm)))  # relative
moved = max_diff(s1.params, state.params)

trainer = FusedTrainer(cfg)
fs = trainer.init(0)
fs, metrics = trainer.chunk(fs, 5)
spread = replica_spread(fs)
env_spread = float(np.max(np.abs(np.asarray(fs.env.obs) - np.asarray(fs.env.obs)[:1])))
print(json.dumps({"param_diff": diff, "norm_diff": norm_diff, "moved": moved, "device_spread": spread,
                  "env_obs_spread": env_spread, "updates": metrics["updates"]}))
