"""Run under XLA_FLAGS=--xla_force_host_platform_device_count=4 (see test_sharding.py).

Prints one JSON line about fused replay on 4 devices against 1:

- DQN gradient steps on one global batch of prioritized samples: 4 devices, each given a quarter
  of the rows (and its shard's share of the importance weights), against 1 device given all of
  them: the largest parameter difference, and how far the parameters moved;
- the sharded sampler's weights: normalised by the largest over every device's draw;
- a fused `cartpole_dqn`-style run on 4 devices: replicas identical after learning, envs apart,
  each buffer shard holding its own envs' transitions;
- a checkpoint of that run restored on 1 device (and back on 4): the learner and every transition
  come back, and the run goes on.
"""
import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from srljax import config, presets
from srljax.dataflow.fused import loop as fused
from srljax.dataflow.fused import replay as fused_replay
from srljax.envs import make
from srljax.learners import make_algorithm, replay

assert jax.local_device_count() == 4, jax.devices()
D, N = 4, 64
cfg = config.override(presets.get("cartpole_dqn"), {
    "env.num_envs": 8, "dqn.batch_size": N, "dqn.buffer_size": 2_048, "dqn.learning_starts": 64,
    "dqn.gradient_steps": 2, "dqn.prioritized": True, "dqn.target_update_every": 2, "dqn.tau": 0.5,
    "total_env_steps": 800, "log_every_env_steps": 400})
env = make("gymnax/CartPole-v1")
rng = np.random.default_rng(0)
batch = {"obs": rng.normal(size=(N, 4)).astype(np.float32), "next_obs": rng.normal(size=(N, 4)).astype(np.float32),
         "action": rng.integers(0, 2, size=(N,)).astype(np.int32), "reward": np.ones((N,), np.float32),
         "discount": (0.99 * (rng.random(N) > 0.1)).astype(np.float32)}
weight = rng.uniform(0.2, 1.0, size=(N,)).astype(np.float32)

one = make_algorithm(cfg, env.observation_space, env.action_space)
state = one.init(jax.random.PRNGKey(0), batch["obs"])


def three_steps(algo, s, b, w):
    td = []
    for _ in range(3):
        s, _, t = algo.update(s, b, w)
        td.append(t)
    return s, jnp.stack(td)


s1, td1 = jax.jit(lambda s: three_steps(one, s, batch, weight))(state)
many = make_algorithm(cfg, env.observation_space, env.action_space, axis_name=fused.AXIS)
mesh = Mesh(np.array(jax.devices()), (fused.AXIS,))
step4 = fused.sharded(mesh, lambda s, b, w: three_steps(many, s, b, w), (P(fused.AXIS),) * 3)
rep = jax.tree.map(lambda x: jnp.stack([x] * D), state)
split = lambda x: np.stack(np.split(x, D))                     # noqa: E731  [D, N / D, ...]
s4, td4 = step4(rep, jax.tree.map(split, batch), split(weight))
leaves = lambda t: [np.asarray(x, np.float64) for x in jax.tree.leaves(t)]   # noqa: E731
param_diff = max(float(np.max(np.abs(a[0] - b))) for a, b in zip(leaves((s4.params, s4.target_params)),
                                                                  leaves((s1.params, s1.target_params))))
moved = max(float(np.max(np.abs(a - b))) for a, b in zip(leaves(s1.params), leaves(state.params)))
td_diff = float(np.max(np.abs(np.asarray(td4).transpose(1, 0, 2).reshape(3, N) - np.asarray(td1))))

# Sharded prioritized sampling: weights (N_shard P_shard(i))^-beta over the largest of the global batch.
cap = 32
bufs = []
for d in range(D):
    b = replay.init({"x": jnp.zeros(())}, cap)
    b = replay.add(b, {"x": jnp.arange(cap, dtype=jnp.float32)[None] + 100 * d})
    bufs.append(replay.update_priorities(b, jnp.arange(cap), jnp.asarray(rng.uniform(0.1, 5.0, cap), jnp.float32)))
bufs = jax.tree.map(lambda *x: jnp.stack(x), *bufs)
draw = fused.sharded(mesh, lambda b, k: replay.sample_prioritized(b, k, 16, 0.6, 0.4, axis_name=fused.AXIS),
                     (P(fused.AXIS), P()))
idx, got, w = draw(bufs, jax.random.PRNGKey(3))
prob = np.asarray(jax.vmap(lambda b: replay.probabilities(b, 0.6))(bufs))
raw = np.stack([(cap * prob[d][np.asarray(idx)[d]]) ** -0.4 for d in range(D)])
weight_err = float(np.max(np.abs(np.asarray(w) - raw / raw.max())))
from_own_shard = bool(np.all(np.asarray(got["x"]) // 100 == np.arange(D)[:, None]))

# A fused run on 4 devices.
trainer = fused_replay.FusedReplayTrainer(cfg)
fs = trainer.init(0)
fs, m = trainer.chunk(fs, 50)                    # 400 env steps: learning from step 8 on
spread = max(float(np.max(np.abs(x - x[:1]))) for x in leaves(fs.learner))
env_spread = float(np.max(np.abs(np.asarray(fs.env.obs) - np.asarray(fs.env.obs)[:1])))
sizes = [int(x) for x in np.asarray(fs.buffer.size)]

# Its checkpoint on 1 device, and back on 4.
saved = serialization.to_state_dict(jax.tree.map(np.asarray, fs))
single = fused_replay.FusedReplayTrainer(cfg, devices=jax.devices()[:1])
fs1 = single.restore(saved, 0)
learner_back = max(float(np.max(np.abs(a - b[0]))) for a, b in zip(leaves(fs1.learner), leaves(fs.learner)))
stored = np.sort(np.asarray(fs.buffer.data["obs"])[:, : sizes[0]].reshape(-1, 4), axis=0)
moved1 = np.sort(np.asarray(fs1.buffer.data["obs"])[0, : int(np.asarray(fs1.buffer.size)[0])], axis=0)
transitions_back = bool(stored.shape == moved1.shape and np.array_equal(stored, moved1))
fs1, m1 = single.chunk(fs1, 10)
fs4 = trainer.restore(serialization.to_state_dict(jax.tree.map(np.asarray, fs1)), 0)
fs4, m4 = trainer.chunk(fs4, 10)
print(json.dumps({
    "param_diff": param_diff, "moved": moved, "td_diff": td_diff, "weight_err": weight_err,
    "from_own_shard": from_own_shard, "device_spread": spread, "env_obs_spread": env_spread, "buffer_sizes": sizes,
    "gradient_steps": m["gradient_steps"], "updates": trainer.policy_version(fs), "learner_back": learner_back,
    "transitions_back": transitions_back, "size_on_1": int(np.asarray(fs1.buffer.size)[0]),
    "steps_after": [single.progress(fs1), trainer.progress(fs4)], "sizes_back_on_4": [int(x) for x in np.asarray(fs4.buffer.size)],
    "grad_steps_after": [m1["gradient_steps"], m4["gradient_steps"]]}))
