"""Distributed mode: build the workers a rank layout asks for, over MPI or inside one process.

    summary = run_distributed(cfg, run_dir, logger)

Under `mpirun -n N` each rank runs its one worker (`Role` from `launch.make_layout`); without
mpirun (or with -n 1) every worker of the same layout runs in this process, polled in turn, over
the in-process streams. Only trainer 0 (rank 0) logs; the summary is returned on every rank
(None on ranks other than 0).
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, List, Optional

from srljax.dataflow import launch
from srljax.dataflow.launch import Backoff, Layout, Role, make_layout
from srljax.dataflow.workers import ActorWorker, BufferWorker, LocalControl, reply_layout, sample_layout
from srljax.errors import UserError


def is_log_rank() -> bool:
    """True in the process that writes the run directory (rank 0, or the only process)."""
    return os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")) == "0"


class _Plan:
    """What every worker needs to agree on: spaces, sizes, message layouts."""

    def __init__(self, cfg, world_size: int, local: bool):
        from srljax.envs.registry import make as make_env

        d = cfg.distributed
        if local:      # one process: one trainer, no buffers; actors as the config says
            import dataclasses
            d = dataclasses.replace(d, trainers=1, buffers=0)
            world_size = 1 + d.policy_workers + max(1, d.actors)
        self.cfg, self.d = cfg, d
        self.layout: Layout = make_layout(d, world_size)
        if cfg.env.num_envs % d.ring_size:
            raise UserError(f"env.num_envs ({cfg.env.num_envs}) must split evenly over distributed.ring_size "
                            f"({d.ring_size}) env batches per actor")
        self.T = cfg.ppo.rollout_len
        if self.T % cfg.ppo.minibatches:
            raise UserError(f"ppo.rollout_len ({self.T}) must divide into ppo.minibatches ({cfg.ppo.minibatches})")
        self.B = cfg.env.num_envs // d.ring_size
        probe = make_env(cfg.env.id, num_envs=1, seed=cfg.seed, **dict(cfg.env.kwargs))
        self.obs_space, self.action_space = probe.observation_space, probe.action_space
        agents = getattr(probe, "num_agents", None)
        probe.close()
        if agents is not None or not hasattr(self.obs_space, "shape"):
            raise UserError(f"{cfg.env.id}: distributed mode supports single-agent envs with array "
                            "observations so far (multi-agent and dict observations are not wired yet)")
        self.obs_shape = tuple(self.obs_space.shape)
        self.samples = sample_layout(self.T, self.B, self.obs_shape, self.action_space)
        self.replies = reply_layout(self.B, self.action_space)
        n_sinks = len(self.layout.trainers)
        self.steps_per_update = self.T * self.B * d.posts_per_update * n_sinks
        self.num_updates = max(1, -(-cfg.total_env_steps // self.steps_per_update))

    def make_envs(self, actor_index: int):
        from srljax.envs.registry import make as make_env
        cfg, d = self.cfg, self.d
        envs, seeds = [], []
        for k in range(d.ring_size):
            seed = cfg.seed * 1_000_003 + (actor_index * d.ring_size + k) * self.B
            envs.append(make_env(cfg.env.id, num_envs=self.B, seed=seed, **dict(cfg.env.kwargs)))
            seeds.append(seed)
        return envs, seeds

    def algorithm(self, grad_reduce=None):
        algo = self._algorithm(grad_reduce)
        if getattr(algo.model, "recurrent", False):
            raise UserError("distributed mode does not support recurrent networks yet (the actors and "
                            "policy workers keep no recurrent state); use a feedforward network")
        return algo

    def _algorithm(self, grad_reduce=None):
        if self.d.algorithm == "vtrace":
            from srljax.learners.vtrace import make_vtrace_algorithm
            return make_vtrace_algorithm(self.cfg, self.obs_space, self.action_space, grad_reduce=grad_reduce,
                                         num_updates=self.num_updates, rho_clip=self.d.vtrace_rho_clip,
                                         c_clip=self.d.vtrace_c_clip)
        from srljax.learners import make_algorithm
        return make_algorithm(self.cfg, self.obs_space, self.action_space, grad_reduce=grad_reduce,
                              num_updates=self.num_updates)

    def codec(self, algo, init_state: bool = False):
        from srljax.dataflow.policy import ParamCodec, example_batch
        return ParamCodec(algo, example_batch(self.samples), self.cfg.seed, init_state)


# ------------------------------------------------------------------------------------- transports

class _MpiTransport:
    def __init__(self, comm):
        from srljax.dataflow import mpi_streams as ms
        self.ms, self.comm = ms, comm

    def poster(self, rank, dest, layout, slots):
        return self.ms.MpiSamplePoster(self.comm, dest, layout, slots)

    def consumer(self, rank, layout, pool):
        return self.ms.MpiSampleConsumer(self.comm, layout, pool)

    def client(self, rank, server, slots, obs_shape, replies):
        return self.ms.MpiInferenceClient(self.comm, server, slots, obs_shape, replies)

    def server(self, rank, clients, slots, obs_shape, replies):
        return self.ms.MpiInferenceServer(self.comm, clients, slots, obs_shape, replies)

    def publisher(self, readers, size):
        return self.ms.MpiParamPublisher(self.comm, readers, size)

    def reader(self, rank, publisher, size):
        return self.ms.MpiParamReader(self.comm, publisher, size)

    def control(self, rank):
        return self.ms.MpiControl(self.comm)


class _LocalTransport:
    def __init__(self):
        from srljax.dataflow import streams
        self.s = streams
        self.samples: Dict[int, Any] = {}
        self.inference: Dict[int, Any] = {}
        self.params = streams.LocalParams()
        self.hub: Dict[str, Any] = {}

    def _samples(self, sink, layout, slots):
        if sink not in self.samples:
            self.samples[sink] = self.s.LocalSampleStream(layout, slots)
        return self.samples[sink]

    def poster(self, rank, dest, layout, slots):
        stream = self._samples(dest, layout, slots)
        stream.slots_per_poster = slots
        return stream.poster(rank)

    def consumer(self, rank, layout, pool):
        return self._samples(rank, layout, pool).consumer()

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


# ------------------------------------------------------------------------------------- workers

def build_worker(plan: _Plan, role: Role, transport, *, logger=None, trainer_comm=None, start=None):
    """The worker for one rank of the layout, wired to its peers through `transport`."""
    d, L, rank = plan.d, plan.layout, role.rank
    control = transport.control(rank)
    replies_shape = (plan.B,) + plan.obs_shape
    if role.kind == "actor":
        envs, seeds = plan.make_envs(role.index)
        server = L.policy_of(rank)
        if server is None:
            from srljax.dataflow.policy import InlinePolicy
            algo = plan.algorithm()
            codec = plan.codec(algo)
            policy = InlinePolicy(algo, codec, transport.reader(rank, L.trainers[0], codec.size),
                                  plan.replies, d.ring_size, replies_shape, plan.cfg.seed + 7919 * (rank + 1))
        else:
            policy = transport.client(rank, server, d.ring_size, replies_shape, plan.replies)
        poster = transport.poster(rank, L.sink_of(rank), plan.samples, d.ring_size + d.send_slots)
        fin_to = [L.sink_of(rank)] + ([server] if server is not None else [])
        return ActorWorker(envs, seeds, policy, poster, control, plan.T, fin_to)
    if role.kind == "policy":
        from srljax.dataflow.policy import PolicyWorker
        algo = plan.algorithm()
        codec = plan.codec(algo)
        clients = L.clients_of(rank)
        server = transport.server(rank, clients, d.ring_size, replies_shape, plan.replies)
        reader = transport.reader(rank, L.trainers[0], codec.size)
        return PolicyWorker(algo, codec, server, reader, control, clients, plan.B, d.ring_size, plan.obs_shape,
                            plan.cfg.seed + 7919 * (rank + 1))
    if role.kind == "buffer":
        consumer = transport.consumer(rank, plan.samples, 2 * len(L.sources_of(rank)) + 2)
        poster = transport.poster(rank, L.sink_of(rank), plan.samples, d.send_slots + 2)
        return BufferWorker(consumer, poster, control, L.sources_of(rank), L.sink_of(rank))
    from srljax.dataflow.trainer import TrainerWorker, mpi_grad_reduce
    grad_reduce = mpi_grad_reduce(trainer_comm) if trainer_comm is not None and trainer_comm.size > 1 else None
    algo = plan.algorithm(grad_reduce)
    codec = plan.codec(algo, init_state=True)
    sources = L.sources_of(rank)
    lead = rank == L.trainers[0]
    trainer = TrainerWorker(
        algo, codec.template_state, codec, transport.consumer(rank, plan.samples, d.posts_per_update + len(sources)),
        plan.samples, control, sources=sources, posts_per_update=d.posts_per_update,
        max_staleness=d.max_staleness, total_env_steps=plan.cfg.total_env_steps,
        publisher=transport.publisher(L.param_readers(), codec.size) if lead else None,
        publish_every=d.publish_every, stop_ranks=L.policies + L.buffers + L.actors,
        logger=logger if lead else None, log_interval_s=d.log_interval_s, stop_at_return=d.stop_at_return,
        comm=trainer_comm, start_time=start, max_nonfinite_updates=plan.cfg.ppo.max_nonfinite_updates)
    trainer.start_publishing()
    return trainer


def _run_loop(worker) -> None:
    backoff = Backoff()
    while not worker.done:
        if worker.poll():
            backoff.busy()
        else:
            backoff.idle()


def main(cfg, args) -> int:
    """`scripts/train.py` for `mode=distributed` (every rank runs it): run directory on rank 0, train.

    `args`: run_dir, overwrite, resume, quiet. Rank 0 alone prepares the directory; its verdict is
    shared, so a bad --run-dir is one line from rank 0 and exit code 2 on every rank.
    """
    launch.configure_process()
    path, logger, problem = None, None, None
    if is_log_rank():
        try:
            path, logger = _prepare_run(cfg, args)
        except UserError as exc:
            problem = exc
    if launch.under_mpirun():
        from mpi4py import MPI
        failed = MPI.COMM_WORLD.bcast(problem is not None, root=0)
        if failed and not is_log_rank():
            sys.exit(2)
    if problem is not None:
        raise problem
    summary = run_distributed(cfg, path, logger)
    if summary is not None and not getattr(args, "quiet", False):
        ret = summary.get("episode_return")
        print(f"done: {summary['env_steps']:,} env steps in {summary['wall_s']:.1f}s "
              f"({summary['steps_per_s']:,.0f} steps/s), episode_return "
              f"{'n/a' if ret is None else f'{ret:.1f}'}; run directory {path}", file=sys.stderr)
    return 0


def _prepare_run(cfg, args):
    from srljax import config as C
    from srljax.runlog import RunLogger, prepare_run_dir, write_json

    if getattr(args, "resume", False):
        raise UserError("--resume is not supported in distributed mode yet (no checkpoints are written)")
    run_dir = getattr(args, "run_dir", None) or f"runs/{cfg.name}-{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = prepare_run_dir(run_dir, overwrite=getattr(args, "overwrite", False))
    write_json(path / "config.json", C.to_dict(cfg))
    return path, RunLogger(path, cfg.total_env_steps, quiet=getattr(args, "quiet", False))


def run_distributed(cfg, run_dir: Optional[str] = None, logger=None) -> Optional[Dict[str, Any]]:
    """Train `cfg` in distributed mode; the summary dict on the logging rank, None elsewhere."""
    start = time.perf_counter()
    launch.configure_process()
    if launch.under_mpirun():
        from mpi4py import MPI
        if MPI.COMM_WORLD.size > 1:
            return _run_mpi(cfg, logger, start)
    return run_local(cfg, logger, start)


def _run_mpi(cfg, logger, start) -> Optional[Dict[str, Any]]:
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank = comm.rank
    def setup():
        try:
            return _Plan(cfg, comm.size, local=False), None
        except UserError as exc:   # every rank finds the same problem
            return None, exc

    plan, problem = launch.guarded(rank, "setup", setup)   # anything else ends the whole job
    if problem is not None:
        if rank == 0:
            raise problem          # the caller prints one line and exits 2
        sys.exit(2)                # every other rank leaves quietly with the same code
    role = plan.layout.role(rank)
    trainer_comm = comm.Split(0 if role.kind == "trainer" else MPI.UNDEFINED, rank)
    return launch.guarded(rank, str(role), lambda: _run_rank(plan, role, comm, trainer_comm, logger, start))


def _run_rank(plan: _Plan, role: Role, comm, trainer_comm, logger, start):
    from srljax.dataflow import mpi_streams
    mpi_streams.check_same(comm, plan.samples.signature(), "the sample message layout")
    transport = _MpiTransport(comm)
    worker = build_worker(plan, role, transport, logger=logger if comm.rank == 0 else None,
                          trainer_comm=trainer_comm if role.kind == "trainer" else None, start=start)
    _run_loop(worker)
    summary = None
    if role.kind == "trainer":
        summary = worker.summary()
        digests = trainer_comm.gather(worker.params_digest(), root=0)   # once, at the end
        if comm.rank == 0:
            summary["trainer_params_digests"] = digests
    worker.control.finish() if hasattr(worker, "control") else None
    if comm.rank == 0:
        summary.update(_layout_summary(plan))
        if logger is not None:
            summary = logger.finish(summary)
        return summary
    return None


def _layout_summary(plan: _Plan) -> Dict[str, Any]:
    L, cfg = plan.layout, plan.cfg
    return {"trainers": len(L.trainers), "policy_workers": len(L.policies), "buffers": len(L.buffers),
            "actors": len(L.actors), "algorithm": plan.d.algorithm, "config": cfg.name, "env": cfg.env.id,
            "seed": cfg.seed, "num_envs": cfg.env.num_envs, "total_env_steps": cfg.total_env_steps}


def run_local(cfg, logger=None, start=None) -> Dict[str, Any]:
    """Every worker of the layout in this process, over in-process streams, polled in turn."""
    start = time.perf_counter() if start is None else start
    launch.configure_process()
    plan = _Plan(cfg, 1, local=True)
    transport = _LocalTransport()
    L = plan.layout
    order = L.trainers + L.policies + L.buffers + L.actors
    workers = {r: build_worker(plan, L.role(r), transport, logger=logger, start=start) for r in order}
    trainer = workers[L.trainers[0]]
    active: List[Any] = [workers[r] for r in reversed(order)]     # actors first, trainer last
    while active:
        for w in active:
            w.poll()
        active = [w for w in active if not w.done]
    summary = trainer.summary()
    summary["trainer_params_digests"] = [trainer.params_digest()]
    summary.update(_layout_summary(plan))
    summary["in_process"] = True
    if logger is not None:
        summary = logger.finish(summary)
    return summary
