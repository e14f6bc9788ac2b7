"""Wiring: the worker of each rank of a layout, joined to its peers over a transport.

A transport makes the ends of every stream: `MpiTransport` over MPI (one rank per worker),
`LocalTransport` inside one process (every worker polled in turn). `build_worker` gives each
role its config sections whole and its stream ends.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

from srljax.dataflow.launch.layout import Role
from srljax.dataflow.plan import Plan
from srljax.dataflow.wire.streams import LocalControl


@dataclasses.dataclass
class RunContext:
    """What the run gives the workers of trainer 0's rank (logger, checkpointer) and every trainer."""

    logger: Any = None               # runlog.RunLogger, trainer 0 only
    checkpointer: Any = None         # checkpoint.Checkpointer, trainer 0 only
    resume: Optional[Dict[str, Any]] = None   # {"state", "meta"}: the checkpoint every trainer continues from
    start: Optional[float] = None    # perf_counter at the run's start
    trainer_comm: Any = None         # MPI communicator of the trainer ranks


class MpiTransport:
    def __init__(self, comm, end=None):
        """`end`: this rank's `ending.EndOfRun` (its deadlines and the ranks' roles)."""
        from srljax.dataflow.wire import mpi as ms
        self.ms, self.comm, self.end = ms, comm, end

    def poster(self, rank, dest, layout, slots, stream="samples"):
        """`stream`: "samples" (rollouts, replay batches) or "priorities" (trainer -> buffer)."""
        return self.ms.MpiSamplePoster(self.comm, dest, layout, slots, tag=self._tag(stream))

    def consumer(self, rank, layout, pool, stream="samples"):
        return self.ms.MpiSampleConsumer(self.comm, layout, pool, tag=self._tag(stream))

    def _tag(self, stream):
        return self.ms.TAG_PRIORITY if stream == "priorities" else self.ms.TAG_SAMPLE

    def client(self, rank, server, slots, obs_shape, replies):
        return self.ms.MpiInferenceClient(self.comm, server, slots, obs_shape, replies)

    def server(self, rank, clients, slots, obs_shape, replies):
        return self.ms.MpiInferenceServer(self.comm, clients, slots, obs_shape, replies)

    def publisher(self, readers, size):
        return self.ms.MpiParamPublisher(self.comm, readers, size)

    def reader(self, rank, publisher, size):
        return self.ms.MpiParamReader(self.comm, publisher, size)

    def control(self, rank):
        return self.ms.MpiControl(self.comm, self.end)


class LocalTransport:
    def __init__(self):
        from srljax.dataflow.wire import streams
        self.s = streams
        self.samples: Dict[Any, Any] = {}
        self.inference: Dict[int, Any] = {}
        self.params = streams.LocalParams()
        self.hub: Dict[str, Any] = {}

    def _samples(self, key, layout, slots):
        if key not in self.samples:
            self.samples[key] = self.s.LocalSampleStream(layout, slots)
        return self.samples[key]

    def poster(self, rank, dest, layout, slots, stream="samples"):
        local = self._samples((dest, stream), layout, slots)
        local.slots_per_poster = slots
        return local.poster(rank)

    def consumer(self, rank, layout, pool, stream="samples"):
        return self._samples((rank, stream), layout, pool).consumer()

    def _inference(self, server, obs_shape, replies):
        if server not in self.inference:
            self.inference[server] = self.s.LocalInference(obs_shape[1:], replies, obs_shape[0])
        return self.inference[server]

    def client(self, rank, server, slots, obs_shape, replies):
        return self._inference(server, obs_shape, replies).client(rank, slots)

    def server(self, rank, clients, slots, obs_shape, replies):
        return self._inference(rank, obs_shape, replies).server()

    def publisher(self, readers, size):
        return self.params

    def reader(self, rank, publisher, size):
        return self.params.reader()

    def control(self, rank):
        return LocalControl(self.hub, rank)


def build_worker(plan: Plan, role: Role, transport, ctx: RunContext):
    """The worker for one rank of the layout."""
    return {"actor": _actor, "policy": _policy, "buffer": _buffer, "trainer": _trainer}[role.kind](
        plan, role.rank, transport, ctx)


def _actor(plan: Plan, rank: int, transport, ctx: RunContext):
    from srljax.dataflow.roles.actor import ActorStreams, ActorWorker
    from srljax.dataflow.roles.guards import EnvGuard

    d, L, spec = plan.d, plan.layout, plan.spec
    index = L.actors.index(rank)
    envs, seeds = plan.make_envs(index)
    server = L.policy_of(rank)
    if server is None:
        from srljax.dataflow.roles.policy import InlinePolicy
        algo = plan.algorithm()
        codec = plan.codec(algo)
        policy = InlinePolicy(algo, codec, transport.reader(rank, L.trainers[0], codec.size), spec, d.ring_size,
                              plan.cfg.seed + 7919 * (rank + 1), recurrent=plan.recurrent)
    else:
        policy = transport.client(rank, server, d.ring_size, (spec.B,) + spec.request_shape, plan.replies)
    streams = ActorStreams(policy, transport.poster(rank, L.sink_of(rank), plan.samples, d.ring_size + d.send_slots),
                           transport.control(rank), [L.sink_of(rank)] + ([server] if server is not None else []))
    guard = EnvGuard(plan.cfg.env.id, plan.cfg.env.on_nonfinite, index, spec.B, seeds)
    actor = ActorWorker(envs, seeds, streams, spec, guard=guard, recurrent=plan.recurrent,
                        random_opponents=d.random_opponents)
    epsilon = plan.actor_epsilon(index)
    if epsilon > 0:
        actor.explore(epsilon, spec.action_space.n)
    return actor


def _policy(plan: Plan, rank: int, transport, ctx: RunContext):
    from srljax.dataflow.roles.policy import PolicyStreams, PolicyWorker

    d, L, spec = plan.d, plan.layout, plan.spec
    algo = plan.algorithm()
    codec = plan.codec(algo)
    clients = L.clients_of(rank)
    streams = PolicyStreams(transport.server(rank, clients, d.ring_size, (spec.B,) + spec.request_shape, plan.replies),
                            transport.reader(rank, L.trainers[0], codec.size), transport.control(rank), clients)
    return PolicyWorker(algo, codec, streams, spec, d.ring_size, plan.cfg.seed + 7919 * (rank + 1),
                        recurrent=plan.recurrent)


def _buffer(plan: Plan, rank: int, transport, ctx: RunContext):
    from srljax.dataflow.roles.buffer import BufferWorker
    if plan.replay is not None:           # the algorithm learns from replay: a replay stage
        from srljax.dataflow.roles.replay_trainer import build_buffer
        return build_buffer(plan, rank, transport, ctx)

    d, L = plan.d, plan.layout
    consumer = transport.consumer(rank, plan.samples, 2 * len(L.sources_of(rank)) + 2)
    poster = transport.poster(rank, L.sink_of(rank), plan.samples, d.send_slots + 2)
    return BufferWorker(consumer, poster, transport.control(rank), L.sources_of(rank), L.sink_of(rank))


def _trainer(plan: Plan, rank: int, transport, ctx: RunContext):
    """Trainer `rank`: its learner (restored on --resume), the stage it learns from (rollouts, or a
    replay stage: `replay_trainer.trainer_stage`), reporting on the lead trainer."""
    import jax

    from srljax.dataflow.roles.intake import SampleIntake
    from srljax.dataflow.roles.multiagent import learner_batch
    from srljax.dataflow.roles.reporting import LeadReporter
    from srljax.dataflow.roles.sync import TrainerSync
    from srljax.dataflow.roles.trainer import TrainerParts, TrainerStreams, TrainerWorker

    cfg, d, L = plan.cfg, plan.d, plan.layout
    sync = TrainerSync(ctx.trainer_comm)
    algo = plan.algorithm(sync.grad_reduce())
    codec = plan.codec(algo, init_state=True)
    state = codec.template_state
    if ctx.resume is not None:
        from srljax.checkpoint import into
        state = into(codec.template_state, ctx.resume["state"]["learner"], "checkpointed learner")
    lead = rank == L.trainers[0]
    publisher = transport.publisher(L.param_readers(), codec.size) if lead else None
    if plan.replay is not None:
        from srljax.dataflow.roles.replay_trainer import trainer_stage
        streams, intake, update, worker = trainer_stage(plan, rank, transport, algo, publisher)
    else:
        sources = L.sources_of(rank)
        streams = TrainerStreams(transport.consumer(rank, plan.samples, d.posts_per_update + len(sources)),
                                 publisher, transport.control(rank), sources, L.policies + L.buffers + L.actors)
        intake = SampleIntake(plan.spec, d.posts_per_update, d.max_staleness, plan.episode_stats)
        packer, presence = plan.packer, plan.presence_key
        update = jax.jit(lambda state, batch: algo.update(state, learner_batch(batch, packer, presence)))
        worker = TrainerWorker
    reporter = LeadReporter(ctx.logger, ctx.checkpointer, cfg, plot=plan.plot) if lead and ctx.logger else None
    trainer = worker(codec, state, update, streams, TrainerParts(intake, sync, reporter), cfg, start_time=ctx.start)
    if ctx.resume is not None:
        trainer.resume(ctx.resume["meta"])
    trainer.start_publishing()
    return trainer
