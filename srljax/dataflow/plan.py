"""What every worker of a distributed run agrees on: ranks, spaces, the batch spec, the algorithm.

Every rank builds the same `Plan` from the config (probing one env for its spaces and traits), so
a config that cannot run fails on every rank at once with the same one-line reason.
"""
from __future__ import annotations

import dataclasses

from srljax.dataflow.launch.layout import Layout, make_layout
from srljax.dataflow.wire.schema import BatchSpec
from srljax.envs import vector
from srljax.errors import UserError
from srljax.learners import registry
from srljax.learners.models import recurrent_state_size


class Plan:
    def __init__(self, cfg, world_size: int, local: bool, loss=None, resume_version: int = 0, env_factory=None):
        """`env_factory`: a user's env object in place of `cfg.env.id` (in one process): a gymnasium
        VectorEnv, or a factory of gymnasium or PettingZoo envs (`srljax.envs.custom`)."""
        self.env_factory = env_factory
        d = cfg.distributed
        self.algo_spec = registry.for_config(cfg)
        replay = self.algo_spec.learns_from == "replay"
        if local:      # one process: one trainer, no buffers (one replay buffer); actors as the config says
            d = dataclasses.replace(d, trainers=1, buffers=int(replay))
            world_size = 1 + d.policy_workers + d.buffers + max(1, d.actors)
        self.cfg, self.d, self.loss, self.resume_version = cfg, d, loss, int(resume_version)
        self.layout: Layout = make_layout(d, world_size)
        if cfg.env.num_envs % d.ring_size:
            raise UserError(f"env.num_envs ({cfg.env.num_envs}) must split evenly over distributed.ring_size "
                            f"({d.ring_size}) env batches per actor")
        T = cfg.rollout.rollout_len
        if replay:
            self._check_replay_layout()
        if T % cfg.ppo.minibatches and not replay:
            raise UserError(f"rollout.rollout_len ({T}) must divide into ppo.minibatches ({cfg.ppo.minibatches})")
        B = cfg.env.num_envs // d.ring_size
        self._probe_env()
        self.algo_replay = self._replay_spec() if replay else None      # the algorithm's ReplaySettings
        self.replay = None                                               # what its buffers and trainers agree on
        if replay:
            from srljax.dataflow.replay.store import BufferSettings
            self.replay = BufferSettings.derive(self.algo_replay, cfg.env.num_envs, len(self.layout.buffers))
        S = recurrent_state_size(cfg.network, self.obs_space)
        if S and self.packer is None:
            raise UserError(f"network.core={cfg.network.core} runs in fused mode (JAX envs); distributed mode's "
                            "recurrent policy is the entity network of multi-agent games whose observations "
                            "are spaces.Entities so far")
        from srljax.dataflow.roles import multiagent as ma
        self.recurrent = ma.RequestCodec(self.packer, S) if S else None
        self.spec = BatchSpec(T, B, self.obs_shape, self.action_space, agents=self.agents, state_size=S,
                              chunk_len=cfg.rollout.chunk_len or T, episode_keys=ma.episode_keys(self.episode_stats))
        chunks = self.spec.chunks * B * d.posts_per_update * (self.agents or 1)
        if S and chunks % cfg.ppo.minibatches:
            raise UserError(f"{chunks} chunks per update (rollout_len / chunk_len x envs per post x posts_per_update "
                            f"x agents) do not split into ppo.minibatches ({cfg.ppo.minibatches})")
        self.samples, self.replies = self.spec.samples(), self.spec.replies()
        if self.replay is not None:
            from srljax.dataflow.roles import replay_trainer
            from srljax.dataflow.wire import schema
            K, N = self.replay.batches_per_message, self.replay.batch_size
            self.replay_batches = schema.replay_batches(self.spec, K, N, replay_trainer.EPISODE_ROWS)
            self.priorities = schema.priorities(K, N)
        self.steps_per_update = T * B * d.posts_per_update * len(self.layout.trainers)   # env steps
        self.num_updates = max(1, -(-cfg.total_env_steps // self.steps_per_update))

    def _check_replay_layout(self) -> None:
        """Refuse a layout replay cannot run on: buffers, a multiple of the trainers."""
        d, L, name = self.d, self.layout, self.algo_spec.name
        if not L.buffers or len(L.buffers) % len(L.trainers):
            t = len(L.trainers)
            need = t + d.policy_workers + t + 1
            raise UserError(f"{name} learns from replay: distributed mode needs distributed.buffers >= 1 and a "
                            f"multiple of distributed.trainers, each trainer learning from its own buffers (got "
                            f"trainers={d.trainers}, buffers={d.buffers}); e.g. mpirun -n {need} or more with "
                            f"trainers={t}, buffers={t}, policy_workers={d.policy_workers}, the rest actors")

    def _replay_spec(self):
        """The built algorithm's `ReplaySettings` (the one replay spec), the algorithm checked against
        `protocols.ReplayAlgorithm` (distributed mode calls its `policy_params` and `actor_step`)."""
        from srljax.learners.protocols import ReplayAlgorithm, missing
        algo = self.algo_spec.build(self.cfg, self.obs_space, self.action_space, loss=self.loss)
        lacks = missing(algo, ReplayAlgorithm)
        if lacks:
            raise UserError(f"{self.algo_spec.name} cannot learn from replay in distributed mode: its algorithm "
                            f"object does not satisfy learners.protocols.ReplayAlgorithm ({'; '.join(lacks)})")
        return algo.replay

    def actor_epsilon(self, actor_index: int) -> float:
        """Ape-X's per-actor exploration (`ReplaySettings.apex_epsilon`) on discrete actions; 0: none."""
        from srljax.envs.spaces import Discrete
        if self.algo_replay is None or not isinstance(self.action_space, Discrete):
            return 0.0
        return self.algo_replay.actor_epsilon(actor_index, len(self.layout.actors))

    def _probe_env(self) -> None:
        """Spaces and traits (`envs.vector.MultiAgentVectorEnv`) of the config's env."""
        from srljax.dataflow.roles import multiagent as ma

        cfg = self.cfg
        probe = self._make(1, cfg.seed)
        self.obs_space, self.action_space = probe.observation_space, probe.action_space
        self.agents = getattr(probe, "num_agents", None)
        self.episode_stats = vector.episode_stats(probe)
        self.presence_key = vector.presence_key(probe)
        self.plot = vector.episode_plot(probe)
        probe.close()
        self.packer = None
        if isinstance(self.obs_space, dict):       # entity observations: packed rows [B, A, D]
            if self.agents is None:
                raise UserError(f"{cfg.env.id}: dict observations are supported for multi-agent games only")
            self.packer = ma.ObsPacker(self.obs_space)
            self.obs_shape = (self.agents, self.packer.size)
        else:        # array observations, per agent in multi-agent games: [B, (A,) *shape]
            self.obs_shape = ((self.agents,) if self.agents is not None else ()) + tuple(self.obs_space.shape)

    def _make(self, num_envs: int, seed: int):
        from srljax.envs.registry import make_vector     # srljax's vector-env interface (envs.vector)
        if self.env_factory is not None:
            return make_vector(self.env_factory, num_envs, seed)
        return make_vector(self.cfg.env.id, num_envs=num_envs, seed=seed, **dict(self.cfg.env.kwargs))

    def make_envs(self, actor_index: int):
        cfg, d, B = self.cfg, self.d, self.spec.B
        envs, seeds = [], []
        for k in range(d.ring_size):
            seed = cfg.seed * 1_000_003 + (actor_index * d.ring_size + k) * B + self.resume_version * 7919
            env = self._make(B, seed)
            if self.packer is not None:
                from srljax.dataflow.roles.multiagent import PackedObsEnv
                env = PackedObsEnv(env)
            envs.append(env)
            seeds.append(seed)
        return envs, seeds

    def algorithm(self, grad_reduce=None):
        algo = self.algo_spec.build(self.cfg, self.obs_space, self.action_space, grad_reduce=grad_reduce,
                                    loss=self.loss, num_updates=self.num_updates)
        if self.replay is not None:
            from srljax.dataflow.roles.replay_trainer import ReplayAgent
            algo = ReplayAgent(algo)
        S = self.spec.state_size
        if getattr(algo.model, "state_size", 0) != S:
            raise UserError(f"the network's recurrent state ({getattr(algo.model, 'state_size', 0)}) does not "
                            f"match the dataflow's ({S}): recurrent networks are the entity network on dict observations")
        return algo

    def check_resume(self, learner_state) -> None:
        """Refuse (CheckpointError) a checkpointed learner that does not fit this plan's learner;
        shapes only (`jax.eval_shape`), nothing is compiled."""
        import jax
        import numpy as np

        from srljax.checkpoint import into
        from srljax.dataflow.roles.policy import example_batch
        algo = self.algorithm()
        shapes = jax.eval_shape(algo.init, jax.random.PRNGKey(0), example_batch(self.spec, self.packer))
        into(jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes), learner_state, "checkpointed learner")

    def codec(self, algo, init_state: bool = False):
        from srljax.dataflow.roles.policy import ParamCodec, example_batch
        return ParamCodec(algo, example_batch(self.spec, self.packer), self.cfg.seed, init_state)
