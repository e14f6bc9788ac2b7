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

    def __init__(self, cfg, world_size: int, local: bool, loss=None, resume_version: int = 0):
        from srljax.envs.registry import make as make_env

        d = cfg.distributed
        if local:      # one process: one trainer, no buffers; actors as the config says
            import dataclasses
            d = dataclasses.replace(d, trainers=1, buffers=0)
            world_size = 1 + d.policy_workers + max(1, d.actors)
        self.cfg, self.d, self.loss, self.resume_version = cfg, d, loss, int(resume_version)
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
        from srljax.dataflow import multiagent as ma
        self.agents, self.packer, self.recurrent = agents, None, None
        if isinstance(self.obs_space, dict):       # entity observations: packed rows [B, A, D]
            if agents is None:
                raise UserError(f"{cfg.env.id}: dict observations are supported for multi-agent games only")
            self.packer = ma.ObsPacker(self.obs_space)
            self.obs_shape = (agents, self.packer.size)
        elif agents is not None:
            raise UserError(f"{cfg.env.id}: multi-agent games with array observations are not supported")
        else:
            self.obs_shape = tuple(self.obs_space.shape)
        S = ma.recurrent_state_size(cfg, self.obs_space)
        self.chunk_len = cfg.ppo.chunk_len or self.T
        chunks = (self.T // self.chunk_len) * self.B * d.posts_per_update * (agents or 1)
        if S and chunks % cfg.ppo.minibatches:
            raise UserError(f"{chunks} chunks per update (rollout_len / chunk_len x envs per post x posts_per_update "
                            f"x agents) do not split into ppo.minibatches ({cfg.ppo.minibatches})")
        if S:
            self.recurrent = ma.RequestCodec(self.packer, S)
        self.episode_keys = ma.episode_keys(cfg.env.id)
        self.samples = sample_layout(self.T, self.B, self.obs_shape, self.action_space, agents=agents,
                                     chunks=self.T // self.chunk_len, state_size=S,
                                     episode_width=len(self.episode_keys))
        self.replies = reply_layout(self.B, self.action_space, agents, S)
        self.request_shape = (agents, self.recurrent.width) if S else self.obs_shape
        n_sinks = len(self.layout.trainers)
        self.steps_per_update = self.T * self.B * d.posts_per_update * n_sinks   # env steps
        self.num_updates = max(1, -(-cfg.total_env_steps // self.steps_per_update))

    def make_envs(self, actor_index: int):
        from srljax.envs.registry import make as make_env
        cfg, d = self.cfg, self.d
        envs, seeds = [], []
        for k in range(d.ring_size):
            seed = cfg.seed * 1_000_003 + (actor_index * d.ring_size + k) * self.B + self.resume_version * 7919
            env = make_env(cfg.env.id, num_envs=self.B, seed=seed, **dict(cfg.env.kwargs))
            if self.packer is not None:
                from srljax.dataflow.multiagent import PackedObsEnv
                env = PackedObsEnv(env)
            envs.append(env)
            seeds.append(seed)
        return envs, seeds

    def algorithm(self, grad_reduce=None):
        algo = self._algorithm(grad_reduce)
        S = self.recurrent.S if self.recurrent is not None else 0
        if getattr(algo.model, "state_size", 0) != S:
            raise UserError(f"the network's recurrent state ({getattr(algo.model, 'state_size', 0)}) does not "
                            f"match the dataflow's ({S}): recurrent networks are the entity network on dict observations")
        return algo

    def _algorithm(self, grad_reduce=None):
        if self.d.algorithm == "vtrace":
            from srljax.learners.vtrace import make_vtrace_algorithm
            return make_vtrace_algorithm(self.cfg, self.obs_space, self.action_space, grad_reduce=grad_reduce,
                                         num_updates=self.num_updates, rho_clip=self.d.vtrace_rho_clip,
                                         c_clip=self.d.vtrace_c_clip)
        from srljax.learners import make_algorithm
        return make_algorithm(self.cfg, self.obs_space, self.action_space, grad_reduce=grad_reduce,
                              num_updates=self.num_updates, loss=self.loss)

    def codec(self, algo, init_state: bool = False):
        from srljax.dataflow.policy import ParamCodec, example_batch
        return ParamCodec(algo, example_batch(self.samples, self.packer), self.cfg.seed, init_state)


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

def build_worker(plan: _Plan, role: Role, transport, *, logger=None, trainer_comm=None, start=None,
                 checkpointer=None, resume: Optional[Dict[str, Any]] = None):
    """The worker for one rank of the layout, wired to its peers through `transport`.

    Trainers: `checkpointer` (trainer 0 only) writes checkpoints; `resume` ({"state", "meta"}, on
    every trainer) is the checkpoint the learner and its counters continue from.
    """
    d, L, rank = plan.d, plan.layout, role.rank
    control = transport.control(rank)
    replies_shape = (plan.B,) + plan.request_shape
    if role.kind == "actor":
        envs, seeds = plan.make_envs(role.index)
        server = L.policy_of(rank)
        if server is None:
            from srljax.dataflow.policy import InlinePolicy
            algo = plan.algorithm()
            codec = plan.codec(algo)
            policy = InlinePolicy(algo, codec, transport.reader(rank, L.trainers[0], codec.size),
                                  plan.replies, d.ring_size, replies_shape, plan.cfg.seed + 7919 * (rank + 1),
                                  recurrent=plan.recurrent)
        else:
            policy = transport.client(rank, server, d.ring_size, replies_shape, plan.replies)
        poster = transport.poster(rank, L.sink_of(rank), plan.samples, d.ring_size + d.send_slots)
        fin_to = [L.sink_of(rank)] + ([server] if server is not None else [])
        from srljax.dataflow.guards import EnvGuard
        guard = EnvGuard(plan.cfg.env.id, plan.cfg.env.on_nonfinite, role.index, plan.B, seeds)
        return ActorWorker(envs, seeds, policy, poster, control, plan.T, fin_to, guard=guard,
                           recurrent=plan.recurrent, chunk_len=plan.chunk_len, episode_keys=plan.episode_keys,
                           random_opponents=d.random_opponents)
    if role.kind == "policy":
        from srljax.dataflow.policy import PolicyWorker
        algo = plan.algorithm()
        codec = plan.codec(algo)
        clients = L.clients_of(rank)
        server = transport.server(rank, clients, d.ring_size, replies_shape, plan.replies)
        reader = transport.reader(rank, L.trainers[0], codec.size)
        return PolicyWorker(algo, codec, server, reader, control, clients, plan.B, d.ring_size, plan.request_shape,
                            plan.cfg.seed + 7919 * (rank + 1), recurrent=plan.recurrent)
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
    state, meta = codec.template_state, None
    if resume is not None:
        from srljax.checkpoint import into
        state, meta = into(codec.template_state, resume["state"]["learner"], "checkpointed learner"), resume["meta"]
    trainer = TrainerWorker(
        algo, state, codec, transport.consumer(rank, plan.samples, d.posts_per_update + len(sources)),
        plan.samples, control, sources=sources, posts_per_update=d.posts_per_update,
        max_staleness=d.max_staleness, total_env_steps=plan.cfg.total_env_steps,
        publisher=transport.publisher(L.param_readers(), codec.size) if lead else None,
        publish_every=d.publish_every, stop_ranks=L.policies + L.buffers + L.actors,
        logger=logger if lead else None, log_interval_s=d.log_interval_s, stop_at_return=d.stop_at_return,
        comm=trainer_comm, start_time=start, max_nonfinite_updates=plan.cfg.ppo.max_nonfinite_updates,
        checkpointer=checkpointer if lead else None, checkpoint_every_logs=plan.cfg.checkpoint_every_logs,
        resume_meta=meta, packer=plan.packer, episode_keys=plan.episode_keys)
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

    `args`: run_dir, overwrite, resume, quiet. Rank 0 alone prepares the directory (and, with
    --resume, reads the latest checkpoint); its verdict is shared, so a bad --run-dir or a corrupt
    checkpoint is one line from rank 0 and exit code 2 on every rank, with nothing written.
    """
    launch.configure_process()
    path, logger, ckpt, resume, problem = None, None, None, None, None
    if is_log_rank():
        try:
            path, logger, ckpt, resume = _prepare_run(cfg, args)
        except UserError as exc:
            problem = exc
    if launch.under_mpirun():
        from mpi4py import MPI
        failed = MPI.COMM_WORLD.bcast(problem is not None, root=0)
        if failed and not is_log_rank():
            sys.exit(2)
    if problem is not None:
        raise problem
    if resume is not None and not getattr(args, "quiet", False):
        print(f"resuming from {resume['path']} (env step {resume['meta']['env_steps']:,}, "
              f"policy version {resume['meta']['version']})", file=sys.stderr)
    summary = run_distributed(cfg, path, logger, checkpointer=ckpt, resume=resume)
    if summary is not None and not getattr(args, "quiet", False):
        ret = summary.get("episode_return")
        print(f"done: {summary['env_steps']:,} env steps in {summary['wall_s']:.1f}s "
              f"({summary['steps_per_s']:,.0f} steps/s), episode_return "
              f"{'n/a' if ret is None else f'{ret:.1f}'}; run directory {path}", file=sys.stderr)
    return 0


def _prepare_run(cfg, args):
    """Rank 0: (run dir, logger, checkpointer, resume) where resume = {"state", "meta", "path"} or None."""
    from srljax import config as C
    from srljax.checkpoint import Checkpointer
    from srljax.runlog import RunLogger, prepare_run_dir, write_json

    resuming = getattr(args, "resume", False)
    if resuming and not getattr(args, "run_dir", None):
        raise UserError("--resume needs --run-dir DIR of the run to continue")
    run_dir = getattr(args, "run_dir", None) or f"runs/{cfg.name}-{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = prepare_run_dir(run_dir, overwrite=getattr(args, "overwrite", False), resume=resuming)
    ckpt = Checkpointer(path, keep=cfg.keep_checkpoints)
    resume = None
    if resuming:
        resume = read_resume(ckpt)
    write_json(path / "config.json", C.to_dict(cfg))
    logger = RunLogger(path, cfg.total_env_steps, quiet=getattr(args, "quiet", False),
                       resume_at=resume["meta"]["env_steps"] if resume else None)
    return path, logger, ckpt, resume


def read_resume(ckpt) -> Dict[str, Any]:
    """The latest distributed-mode checkpoint of a run: {"state", "meta", "path"}; UserErrors if none fits."""
    latest = ckpt.latest()
    if latest is None:
        raise UserError(f"--resume: {ckpt.dir.parent} has no checkpoint to resume from")
    state, header = ckpt.restore(latest)            # CheckpointError (a UserError) when corrupt
    meta = header.get("meta", {})
    if meta.get("mode") != "distributed" or "learner" not in state:
        from srljax.checkpoint import CheckpointError
        raise CheckpointError(f"checkpoint {latest} was not written in distributed mode (mode "
                              f"{meta.get('mode', 'fused')!r}); resume it with the config it was written with")
    return {"state": state, "meta": meta, "path": str(latest)}


def run_distributed(cfg, run_dir: Optional[str] = None, logger=None, *, checkpointer=None,
                    resume: Optional[Dict[str, Any]] = None, loss=None) -> Optional[Dict[str, Any]]:
    """Train `cfg` in distributed mode; the summary dict on the logging rank, None elsewhere.

    `checkpointer` (a `srljax.checkpoint.Checkpointer`, logging rank): where trainer 0 writes
    checkpoints. `resume` (from `read_resume`, logging rank): continue from that checkpoint.
    `loss` (in-process runs only): a custom `loss(model, params, mb, key)` for the PPO learner.
    """
    start = time.perf_counter()
    launch.configure_process()
    if launch.under_mpirun():
        from mpi4py import MPI
        if MPI.COMM_WORLD.size > 1:
            if loss is not None:
                raise UserError("a custom loss is only supported in one process (not under mpirun)")
            return _run_mpi(cfg, logger, start, checkpointer, resume)
    return run_local(cfg, logger, start, checkpointer=checkpointer, resume=resume, loss=loss)


def _run_mpi(cfg, logger, start, checkpointer=None, resume=None) -> Optional[Dict[str, Any]]:
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank = comm.rank
    meta = comm.bcast(None if resume is None else resume["meta"], root=0)

    def setup():
        try:
            return _Plan(cfg, comm.size, local=False, resume_version=meta["version"] if meta else 0), None
        except UserError as exc:   # every rank finds the same problem
            return None, exc

    plan, problem = launch.guarded(rank, "setup", setup)   # anything else ends the whole job
    if problem is not None:
        if rank == 0:
            raise problem          # the caller prints one line and exits 2
        sys.exit(2)                # every other rank leaves quietly with the same code
    role = plan.layout.role(rank)
    launch.announce(str(role))
    _record_ranks(comm, role, logger)
    trainer_comm = comm.Split(0 if role.kind == "trainer" else MPI.UNDEFINED, rank)
    if role.kind == "trainer" and meta is not None:
        # Trainer 0 read the checkpoint; every trainer continues from it (any number of trainers).
        state = trainer_comm.bcast(resume["state"] if rank == 0 else None, root=0)
        resume = {"state": state, "meta": meta}
    return launch.guarded(rank, str(role), lambda: _run_rank(plan, role, comm, trainer_comm, logger, start,
                                                              checkpointer, resume))


def _record_ranks(comm, role: Role, logger) -> None:
    """Rank 0 writes RUN_DIR/ranks.json (rank, role, pid, host) and prints the role map on stderr."""
    import socket
    mine = {"rank": comm.rank, "role": str(role), "pid": os.getpid(), "supervisor_pid": os.getppid()
            if launch.SUPERVISOR_FD in os.environ else None, "host": socket.gethostname()}
    table = comm.gather(mine, root=0)
    if comm.rank != 0 or logger is None:
        return
    if logger.run_dir is not None:
        from srljax.runlog import write_json
        write_json(logger.run_dir / "ranks.json", {"ranks": table})
    if not logger.quiet:
        print("srljax: ranks: " + ", ".join(f"{r['rank']} {r['role']} (pid {r['pid']})" for r in table),
              file=sys.stderr, flush=True)


def _run_rank(plan: _Plan, role: Role, comm, trainer_comm, logger, start, checkpointer=None, resume=None):
    from srljax.dataflow import mpi_streams
    if role.kind in ("trainer", "policy") or (role.kind == "actor" and plan.cfg.distributed.inline_inference):
        launch.start_jax_on_one_core()
    if role.kind == "actor" and plan.cfg.distributed.actor_nice:
        os.nice(plan.cfg.distributed.actor_nice)
    mpi_streams.check_same(comm, plan.samples.signature(), "the sample message layout")
    transport = _MpiTransport(comm)
    lead = comm.rank == 0
    worker = build_worker(plan, role, transport, logger=logger if lead else None,
                          trainer_comm=trainer_comm if role.kind == "trainer" else None, start=start,
                          checkpointer=checkpointer if lead else None, resume=resume)
    try:
        _run_loop(worker)
    except KeyboardInterrupt:
        # Ctrl-C: trainer 0 keeps what it learned since its last checkpoint (the other ranks give
        # it a moment before they end the job: launch.guarded).
        if lead and role.kind == "trainer" and getattr(worker, "checkpointer", None) is not None:
            worker.save_checkpoint()
            sys.stderr.write(f"srljax: checkpoint saved at update {worker.version}, "
                             f"{worker.total_steps:,} env steps\n")
            sys.stderr.flush()
        raise
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


def run_local(cfg, logger=None, start=None, *, checkpointer=None, resume=None, loss=None) -> Dict[str, Any]:
    """Every worker of the layout in this process, over in-process streams, polled in turn."""
    start = time.perf_counter() if start is None else start
    launch.configure_process()
    plan = _Plan(cfg, 1, local=True, loss=loss, resume_version=resume["meta"]["version"] if resume else 0)
    transport = _LocalTransport()
    L = plan.layout
    order = L.trainers + L.policies + L.buffers + L.actors
    workers = {r: build_worker(plan, L.role(r), transport, logger=logger, start=start,
                               checkpointer=checkpointer, resume=resume) for r in order}
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
