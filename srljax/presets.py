"""Every named config (`--config NAME`, `srljax.train("NAME")`), as overrides of `srljax.config.Config`.

One table for both modes. Hide-and-seek's presets are sized for the shared 2-core machine
(`mpirun -n 4`: 1 trainer and 3 actors that run the policy themselves); docs/hns_training.md
gives the reasons for each setting and the settings of SRL's cluster run, with policy workers.
This module imports no jax.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

from srljax.config import Config, override
from srljax.errors import UserError

# name -> (one-line description, overrides of the default Config)
_TABLE: Dict[str, Tuple[str, Dict[str, Any]]] = {}


def _add(name: str, description: str, fields: Dict[str, Any]) -> None:
    _TABLE[name] = (description, fields)


# -- fused mode: JAX envs ----------------------------------------------------------------------
_add("cartpole", "PPO on gymnax CartPole-v1 in fused mode (the default; solved in ~300k steps)",
     {"env.id": "gymnax/CartPole-v1", "env.num_envs": 8, "rollout.rollout_len": 128, "ppo.lr": 5e-4,
      "total_env_steps": 500_000, "log_every_env_steps": 25_600})
_add("cartpole_purejaxrl", "PureJaxRL's CartPole settings (4 envs x 128 steps, 4 epochs, 4 minibatches)",
     {"env.id": "gymnax/CartPole-v1", "env.num_envs": 4, "rollout.rollout_len": 128, "ppo.lr": 2.5e-4,
      "total_env_steps": 500_000, "log_every_env_steps": 25_600})
_add("cartpole_dqn", "Double dueling DQN on gymnax CartPole-v1 in fused mode (replay inside the jitted program), 100k steps",
     {"algorithm.name": "dqn", "env.id": "gymnax/CartPole-v1", "env.num_envs": 10,
      "network.hidden": [64, 64], "network.activation": "swish",
      "dqn.lr": 1e-3, "dqn.gamma": 0.99, "dqn.n_step": 2, "dqn.buffer_size": 100_000, "dqn.batch_size": 128,
      "dqn.learning_starts": 1_000, "dqn.train_every": 1, "dqn.gradient_steps": 4,
      "dqn.target_update_every": 1, "dqn.tau": 0.005, "dqn.epsilon_start": 1.0, "dqn.epsilon_end": 0.01,
      "dqn.epsilon_decay_steps": 20_000, "dqn.double": True, "dqn.dueling": True, "dqn.max_grad_norm": 10.0,
      "total_env_steps": 100_000, "log_every_env_steps": 5_000})
_add("pendulum_sac", "SAC (twin critics, learned temperature) on gymnax Pendulum-v1 in fused mode: 4 envs, "
     "one gradient step of 256 per env step, 20k steps",
     {"algorithm.name": "sac", "env.id": "gymnax/Pendulum-v1", "env.num_envs": 4,
      "network.hidden": [64, 64], "network.activation": "swish",
      "sac.lr": 1e-3, "sac.alpha_lr": 1e-3, "sac.gamma": 0.99, "sac.tau": 0.005, "sac.buffer_size": 20_000,
      "sac.batch_size": 256, "sac.learning_starts": 1_000, "sac.train_every": 1, "sac.gradient_steps": 4,
      "total_env_steps": 20_000, "log_every_env_steps": 2_000})
_add("memory_chain", "PPO with an LSTM policy (network.core=lstm) on gymnax MemoryChain-bsuite, memory_length 10: "
     "answer at the end what was shown at the start (a feedforward policy scores 0), 200k steps",
     {"env.id": "gymnax/MemoryChain-bsuite", "env.kwargs": {"memory_length": 10}, "network.core": "lstm",
      "env.num_envs": 16, "rollout.rollout_len": 64, "ppo.lr": 1e-3, "total_env_steps": 200_000,
      "log_every_env_steps": 40_960})
_add("mpe_simple_spread", "PPO on JaxMARL's MPE simple_spread_v3 in fused mode (3 agents, one shared policy): "
     "pz_simple_spread's settings, 2M env steps; pip install jaxmarl",
     # JaxMARL's MPE ends an episode after max_steps + 1 steps (its done flag reads the step count
     # before the step): max_steps 24 gives PettingZoo's 25-step episodes, so returns compare
     {"env.id": "jaxmarl/MPE_simple_spread_v3", "env.kwargs": {"max_steps": 24}, "env.num_envs": 32, "ppo.gamma": 0.9,
      "rollout.rollout_len": 40, "ppo.epochs": 4, "ppo.minibatches": 4, "ppo.lr": 5e-4, "ppo.anneal_lr": False,
      "ppo.ent_coef": 0.01, "ppo.normalize_obs": True, "ppo.normalize_value": True,
      "total_env_steps": 2_000_000, "log_every_env_steps": 102_400})
_add("smax_3m", "MAPPO on JaxMARL's SMAX 3m against its heuristic enemy, fused: 3 marines, one shared policy, "
     "the env's world state for the critic, killed units terminate alone; pip install jaxmarl",
     {"env.id": "jaxmarl/HeuristicEnemySMAX", "env.kwargs": {"scenario": "3m", "world_state": True},
      "env.num_envs": 64, "rollout.rollout_len": 64, "ppo.epochs": 4, "ppo.minibatches": 4, "ppo.lr": 1e-3,
      "ppo.gamma": 0.99, "ppo.ent_coef": 0.01, "ppo.normalize_obs": True,
      "total_env_steps": 2_000_000, "log_every_env_steps": 131_072})
_add("brax_inverted_pendulum", "PPO on brax inverted_pendulum (continuous actions), 2M env steps",
     {"env.id": "brax/inverted_pendulum", "env.num_envs": 128, "rollout.rollout_len": 32, "ppo.epochs": 4,
      "ppo.minibatches": 8, "ppo.lr": 3e-4, "ppo.gamma": 0.97, "ppo.ent_coef": 0.01,
      "ppo.max_grad_norm": 1.0, "ppo.normalize_obs": True, "ppo.reward_scale": 0.1,
      "network.hidden": [64, 64], "total_env_steps": 2_000_000, "log_every_env_steps": 65_536})
_add("brax_ant", "PPO on brax ant (continuous actions, 27-d observations)",
     {"env.id": "brax/ant", "env.num_envs": 256, "rollout.rollout_len": 16, "ppo.epochs": 4,
      "ppo.minibatches": 8, "ppo.lr": 3e-4, "ppo.gamma": 0.97, "ppo.ent_coef": 0.01,
      "ppo.max_grad_norm": 1.0, "ppo.normalize_obs": True, "ppo.reward_scale": 0.1,
      "network.hidden": [128, 128], "network.activation": "swish",
      "total_env_steps": 5_000_000, "log_every_env_steps": 131_072})

# -- distributed mode: CPU envs over MPI -------------------------------------------------------
_add("gym_cartpole", "PPO on gymnasium CartPole-v1 over MPI: mpirun -n 4 (1 trainer, 1 policy worker, 2 actors)",
     {"mode": "distributed", "env.id": "gym/CartPole-v1", "env.num_envs": 64,
      "rollout.rollout_len": 32, "ppo.epochs": 4, "ppo.minibatches": 4, "ppo.lr": 1e-3,
      "ppo.anneal_lr": False, "ppo.ent_coef": 0.0,
      "distributed.trainers": 1, "distributed.policy_workers": 1, "distributed.ring_size": 2,
      "distributed.posts_per_update": 2, "distributed.max_staleness": 4,
      "distributed.stop_at_return": 475.0, "total_env_steps": 500_000})
# Ape-X DQN: 1 trainer, 1 prioritized replay buffer, 2 actors running the greedy policy inline,
# each with its own epsilon (dqn.apex_*: 0.05 and ~4e-10); rollout.rollout_len is the env steps per
# posted rollout; 8 gradient steps of 128 per replay message; actors niced (the trainer is the bottleneck).
_add("gym_cartpole_dqn", "Ape-X DQN on gymnasium CartPole-v1 over MPI: mpirun -n 4 (1 trainer, 1 prioritized replay "
     "buffer, 2 actors with their own epsilon)",
     {"mode": "distributed", "algorithm.name": "dqn", "env.id": "gym/CartPole-v1", "env.num_envs": 8,
      "rollout.rollout_len": 16, "network.hidden": [64, 64], "network.activation": "swish",
      "dqn.lr": 5e-4, "dqn.gamma": 0.99, "dqn.n_step": 2, "dqn.buffer_size": 100_000, "dqn.batch_size": 128,
      "dqn.gradient_steps": 8, "dqn.learning_starts": 2_000, "dqn.replay_ratio": 16.0, "dqn.tau": 0.005,
      "dqn.dueling": True, "dqn.prioritized": True, "dqn.alpha": 0.6, "dqn.beta": 0.4,
      "dqn.apex_epsilon": 0.05, "dqn.apex_alpha": 7.0,
      "distributed.trainers": 1, "distributed.policy_workers": 0, "distributed.inline_inference": True,
      "distributed.buffers": 1, "distributed.actors": 2, "distributed.ring_size": 1, "distributed.actor_nice": 5,
      "distributed.stop_at_return": 475.0, "total_env_steps": 400_000})
# Distributed SAC: 1 trainer, 1 uniform replay buffer, 2 actors sampling the squashed Gaussian
# inline (uniform actions until the trainer's first gradient step); one gradient step of 256 per
# env step, 8 per replay message; rollouts of 8 steps of 4 envs per post; actors niced (the
# trainer is the bottleneck). Reached -250 (last 100 episodes) at 23.6k-23.9k env steps, seeds 0-2.
_add("gym_pendulum_sac", "SAC on gymnasium Pendulum-v1 over MPI: mpirun -n 4 (1 trainer, 1 replay buffer, 2 actors), "
     "replay ratio 256; stops once the last 100 episodes reach -250 (or at 30k steps)",
     {"mode": "distributed", "algorithm.name": "sac", "env.id": "gym/Pendulum-v1", "env.num_envs": 4,
      "rollout.rollout_len": 8, "network.hidden": [64, 64], "network.activation": "swish",
      "sac.lr": 1e-3, "sac.alpha_lr": 1e-3, "sac.gamma": 0.99, "sac.tau": 0.005, "sac.buffer_size": 30_000,
      "sac.batch_size": 256, "sac.learning_starts": 1_000, "sac.gradient_steps": 8, "sac.replay_ratio": 256.0,
      "distributed.trainers": 1, "distributed.policy_workers": 0, "distributed.inline_inference": True,
      "distributed.buffers": 1, "distributed.actors": 2, "distributed.ring_size": 1, "distributed.actor_nice": 5,
      "distributed.stop_at_return": -250.0, "total_env_steps": 30_000})
# PettingZoo: MPE2 simple_spread (3 agents cover 3 landmarks, 25-step episodes), one shared policy
# for the agents; inline inference in 3 actors (the env is pure Python, about 1.3k env steps/s a core).
# gamma 0.9: with 0.99 the value of every state is about -100 (the 25-step time limit is bootstrapped)
# and its errors swamp the advantages (the return fell from -25 to -35 in 140k steps).
_add("pz_simple_spread", "PPO on PettingZoo mpe2 simple_spread_v3 (3 agents, one shared policy) over MPI: mpirun -n 4 "
     "(1 trainer, 3 actors); pip install 'srljax[pettingzoo]'",
     {"mode": "distributed", "env.id": "pz/mpe2.simple_spread_v3", "env.num_envs": 32, "ppo.gamma": 0.9,
      "rollout.rollout_len": 40, "ppo.epochs": 4, "ppo.minibatches": 4, "ppo.lr": 5e-4, "ppo.anneal_lr": False,
      "ppo.ent_coef": 0.01, "ppo.normalize_obs": True, "ppo.normalize_value": True,
      "distributed.trainers": 1, "distributed.policy_workers": 0, "distributed.inline_inference": True,
      "distributed.actors": 3, "distributed.ring_size": 1, "distributed.posts_per_update": 1,
      "distributed.max_staleness": 4, "distributed.stop_at_return": None,
      "total_env_steps": 400_000, "log_every_env_steps": 20_000})

# -- hide-and-seek ----------------------------------------------------------------------------
# Inline inference (a policy worker's messages and wake-ups cost 2 cores three times its
# inference), 32 games per actor in one batch, one epoch of 8 minibatches, 40-step rollouts,
# actors at niceness 5 so the trainer never waits for a core; three actors posting in turn make a
# rollout span about three updates, hence max_staleness 6; one team plays random actions in half
# of the episodes (self-play alone fitted the seekers to the trained hiders only). The network is
# the entity-attention policy (`network.hidden` = [entity embedding, dense/LSTM width]).
_HNS = {
    "mode": "distributed",
    "ppo.gamma": 0.998, "ppo.gae_lambda": 0.95, "ppo.lr": 1e-3, "ppo.anneal_lr": False,
    "ppo.clip_eps": 0.2, "ppo.ent_coef": 0.003, "ppo.vf_coef": 0.5, "ppo.max_grad_norm": 5.0,
    "ppo.normalize_obs": True, "ppo.normalize_value": True, "ppo.normalize_adv": True,
    "rollout.chunk_len": 10, "ppo.epochs": 1, "ppo.minibatches": 8,
    "network.hidden": [16, 64],
    "distributed.trainers": 1, "distributed.policy_workers": 0, "distributed.inline_inference": True,
    "distributed.ring_size": 1, "distributed.posts_per_update": 1, "distributed.max_staleness": 6,
    "distributed.actor_nice": 5, "distributed.random_opponents": 0.5,
    "distributed.log_interval_s": 10.0,
}
_add("hns_quadrant",
     "Hide-and-seek quadrant game (2 v 2), entity-attention LSTM PPO: mpirun -n 4 on 2 cores (1 trainer, 3 actors)",
     {**_HNS, "env.id": "hns/quadrant", "env.num_envs": 32, "rollout.rollout_len": 40,
      "total_env_steps": 20_000_000, "log_every_env_steps": 50_000})
_add("hns_full",
     "Hide-and-seek full game (1-3 v 1-3, boxes, ramps, rooms): mpirun -n 4 on 2 cores; see docs/hns_training.md",
     {**_HNS, "env.id": "hns/full", "env.num_envs": 8, "rollout.rollout_len": 80,
      "total_env_steps": 100_000_000, "log_every_env_steps": 50_000})

# The JAX game (srljax/envs/hns_jax, docs/hns_jax.md) in fused mode: env, policy and learner in one
# jitted program, self-play with the same network, algorithm and random-opponent mixing as above
# (the env draws the random team itself: `env.kwargs.random_opponents`). 128 games a batch, split
# over one XLA CPU device per core (`cpu_devices` 0): one device keeps about one core busy. 32
# minibatches of 640 agent-steps: the MuJoCo preset's minibatch and gradient steps per env step
# (its updates take 1,280 env steps in 8 minibatches).
_HNS_JAX = {**{k: v for k, v in _HNS.items() if not k.startswith("distributed.")}, "cpu_devices": 0,
            "ppo.minibatches": 32}
_add("hns_jax_quadrant",
     "Hide-and-seek quadrant game in JAX (hns_jax/quadrant), fused: the entity-attention LSTM, MAPPO, "
     "random opponents in half the episodes, 128 games a batch",
     {**_HNS_JAX, "mode": "fused", "env.id": "hns_jax/quadrant", "env.kwargs": {"random_opponents": 0.5},
      "env.num_envs": 128, "rollout.rollout_len": 40, "total_env_steps": 20_000_000,
      "log_every_env_steps": 51_200})
_add("hns_jax_full",
     "Hide-and-seek full game in JAX (hns_jax/full), fused: the entity-attention LSTM, MAPPO, "
     "random opponents in half the episodes, 64 games a batch",
     {**_HNS_JAX, "mode": "fused", "env.id": "hns_jax/full", "env.kwargs": {"random_opponents": 0.5},
      "env.num_envs": 64, "rollout.rollout_len": 80, "total_env_steps": 100_000_000,
      "log_every_env_steps": 51_200})

PRESETS: Dict[str, Config] = {name: override(Config(name=name, description=desc), fields)
                              for name, (desc, fields) in _TABLE.items()}


def names():
    return sorted(PRESETS)


def get(name: str) -> Config:
    if name not in PRESETS:
        raise UserError(f"unknown config {name!r}; named configs: {', '.join(names())}")
    return PRESETS[name]


def list_configs() -> str:
    width = max(len(n) for n in PRESETS)
    return "\n".join(f"{n:<{width}}  {c.description}" for n, c in sorted(PRESETS.items()))
