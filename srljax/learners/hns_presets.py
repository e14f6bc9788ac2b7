"""Named hide-and-seek configs (distributed mode), as overrides of the default `srljax.config.Config`.

`srljax.config` registers these beside its own presets. The defaults fit the shared 2-core machine
(`mpirun -n 4`: 1 trainer and 3 actors that run the policy themselves); docs/hns_training.md gives
the settings of SRL's cluster run, with policy workers. The network is the entity-attention policy
of `srljax.learners.entity_net` (`network.hidden` = [entity embedding, dense/LSTM width]: [16, 64]
here, the paper's [128, 256] on a cluster). On 2 cores the trainer shares the CPU with the
simulators, so the quadrant defaults are sized for the simulators to stay busy (docs/hns_training.md,
"Throughput"): inline inference (a policy worker's messages, wake-ups and waiting cost the 2 cores
three times its inference), 32 games per actor in one batch (128 agent rows per policy call), one
epoch of 8 minibatches, 40-step rollouts, and actors at niceness 5 so the trainer never waits for a
core. With three actors posting in turn, a rollout spans about three updates, so samples may lag
six policy versions before they are dropped. One team plays random actions in half of the episodes (`distributed.random_opponents`):
self-play alone fitted the seekers to the trained hiders only.

Per update: `distributed.posts_per_update` samples, each `env.num_envs / ring_size` games x
`ppo.rollout_len` steps x agents per game, cut into `ppo.chunk_len`-step chunks. Quadrant
defaults: 1 post x 32 games x 40 steps x 4 agents = 5,120 agent-steps = 512 chunks per update.

This module imports nothing, so `srljax.config` stays free of jax.
"""

_COMMON = {
    "mode": "distributed",
    "ppo.gamma": 0.998, "ppo.gae_lambda": 0.95, "ppo.lr": 1e-3, "ppo.anneal_lr": False,
    "ppo.clip_eps": 0.2, "ppo.ent_coef": 0.003, "ppo.vf_coef": 0.5, "ppo.max_grad_norm": 5.0,
    "ppo.normalize_obs": True, "ppo.normalize_value": True, "ppo.normalize_adv": True,
    "ppo.chunk_len": 10, "ppo.epochs": 1, "ppo.minibatches": 8,
    "network.hidden": [16, 64],
    "distributed.trainers": 1, "distributed.policy_workers": 0, "distributed.inline_inference": True,
    "distributed.ring_size": 1, "distributed.posts_per_update": 1, "distributed.max_staleness": 6,
    "distributed.actor_nice": 5, "distributed.random_opponents": 0.5,
    "distributed.log_interval_s": 10.0,
}

HNS_PRESETS = {
    "hns_quadrant": (
        "Hide-and-seek quadrant game (2 v 2), entity-attention LSTM PPO: mpirun -n 4 on 2 cores (1 trainer, 3 actors)",
        {**_COMMON, "env.id": "hns/quadrant", "env.num_envs": 32, "ppo.rollout_len": 40,
         "total_env_steps": 20_000_000, "log_every_env_steps": 50_000},
    ),
    "hns_full": (
        "Hide-and-seek full game (1-3 v 1-3, boxes, ramps, rooms): mpirun -n 4 on 2 cores; see docs/hns_training.md",
        {**_COMMON, "env.id": "hns/full", "env.num_envs": 8, "ppo.rollout_len": 80,
         "total_env_steps": 100_000_000, "log_every_env_steps": 50_000},
    ),
}
