"""Named distributed-mode configs, as overrides of the default `srljax.config.Config`.

`srljax.config` registers these beside its fused-mode presets.
"""

DISTRIBUTED_PRESETS = {
    "gym_cartpole": (
        "PPO on gymnasium CartPole-v1 over MPI: mpirun -n 4 (1 trainer, 1 policy worker, 2 actors)",
        {"mode": "distributed", "env.id": "gym/CartPole-v1", "env.num_envs": 64,
         "ppo.rollout_len": 32, "ppo.epochs": 4, "ppo.minibatches": 4, "ppo.lr": 1e-3,
         "ppo.anneal_lr": False, "ppo.ent_coef": 0.0,
         "distributed.trainers": 1, "distributed.policy_workers": 1, "distributed.ring_size": 2,
         "distributed.posts_per_update": 2, "distributed.max_staleness": 4,
         "distributed.stop_at_return": 475.0, "total_env_steps": 500_000},
    ),
}
