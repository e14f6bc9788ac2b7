"""Distributed mode: the workers a rank layout asks for, over MPI or inside one process.

    summary = run(cfg, ctx)        # srljax.run calls this on every rank

Under `mpirun -n N` each rank runs its one worker (`Role` from `launch.layout.make_layout`); without
mpirun (or with -n 1) every worker of the same layout runs in this process, polled in turn, over
the in-process streams. Only trainer 0 (rank 0) logs; the summary is returned on rank 0 and None
elsewhere.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, List, Optional

from srljax.dataflow.launch.process import configure_process, guarded
from srljax.dataflow.launch import supervisor
from srljax.dataflow.build import LocalTransport, MpiTransport, RunContext, build_worker
from srljax.dataflow.launch.layout import Role
from srljax.dataflow.plan import Plan
from srljax.dataflow.roles.worker import run_loop
from srljax.errors import UserError
from srljax.process import under_mpirun


def run(cfg, ctx: RunContext, loss=None, plan: Optional[Plan] = None, env=None) -> Optional[Dict[str, Any]]:
    """Train `cfg` in distributed mode: over MPI under mpirun with several ranks, else in-process.

    `ctx.resume` ({"state", "meta"}, rank 0): continue from that checkpoint. `loss`: a custom loss
    for the learner (its signature is the algorithm's; under mpirun only one named by
    `algorithm.loss`, which every rank resolved). `plan`: this process's
    plan when already built (`check`), so the env is not probed again. `env` (in-process runs
    only): a user's gymnasium env factory.
    """
    configure_process()
    ctx.start = time.perf_counter() if ctx.start is None else ctx.start
    if under_mpirun():
        from mpi4py import MPI
        if MPI.COMM_WORLD.size > 1:
            _only_named_loss(cfg, loss, env)
            return _run_mpi(cfg, ctx, plan, loss)
    return run_local(cfg, ctx, loss=loss, plan=plan, env=env)


def check(cfg, loss=None, resume_version: int = 0, env=None) -> Plan:
    """The plan this process's run would build (a UserError where the config cannot run)."""
    world = 1
    if under_mpirun():
        from mpi4py import MPI
        world = MPI.COMM_WORLD.size
    if world > 1:
        _only_named_loss(cfg, loss, env)
    plan = Plan(cfg, world, local=world == 1, loss=loss, resume_version=resume_version, env_factory=env)
    plan.algorithm()      # an algorithm that cannot drive the env's spaces is refused here, before any write
    return plan


def _only_named_loss(cfg, loss, env) -> None:
    """Under mpirun every rank builds the learner: a loss must be named by import path, which each
    rank resolves (`algorithm.loss`), not handed over as a function object."""
    if env is not None or (loss is not None and not cfg.algorithm.loss):
        raise UserError("an env object or a loss passed as a function is only supported in one process (not under "
                        "mpirun); under mpirun name the loss by import path: --set algorithm.loss=module:function")


def _run_mpi(cfg, ctx: RunContext, plan: Optional[Plan] = None, loss=None) -> Optional[Dict[str, Any]]:
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank = comm.rank
    meta = comm.bcast(None if ctx.resume is None else ctx.resume["meta"], root=0)

    def setup():
        try:
            return plan or Plan(cfg, comm.size, local=False, loss=loss,
                                resume_version=meta["version"] if meta else 0), None
        except UserError as exc:   # every rank finds the same problem
            return None, exc

    plan, problem = guarded(rank, "setup", setup)   # anything else ends the whole job
    if problem is not None:
        if rank == 0:
            raise problem          # the caller prints one line and exits 2
        sys.exit(2)                # every other rank leaves quietly with the same code
    role = plan.layout.role(rank)
    supervisor.announce(str(role))
    _record_ranks(comm, role, ctx.logger)
    ctx.trainer_comm = comm.Split(0 if role.kind == "trainer" else MPI.UNDEFINED, rank)
    if role.kind == "trainer" and meta is not None:
        # Trainer 0 read the checkpoint; every trainer continues from it (any number of trainers).
        state = ctx.trainer_comm.bcast(ctx.resume["state"] if rank == 0 else None, root=0)
        ctx.resume = {"state": state, "meta": meta}
    return guarded(rank, str(role), lambda: _run_rank(plan, role, comm, ctx))


def _record_ranks(comm, role: Role, logger) -> None:
    """Rank 0 writes RUN_DIR/ranks.json (rank, role, pid, host) and prints the role map on stderr."""
    import socket
    mine = {"rank": comm.rank, "role": str(role), "pid": os.getpid(), "supervisor_pid": os.getppid()
            if supervisor.SUPERVISOR_FD in os.environ else None, "host": socket.gethostname()}
    table = comm.gather(mine, root=0)
    if comm.rank != 0 or logger is None:
        return
    if logger.run_dir is not None:
        from srljax.runlog import write_json
        write_json(logger.run_dir / "ranks.json", {"ranks": table})
    if not logger.quiet:
        print("srljax: ranks: " + ", ".join(f"{r['rank']} {r['role']} (pid {r['pid']})" for r in table),
              file=sys.stderr, flush=True)


def _run_rank(plan: Plan, role: Role, comm, ctx: RunContext):
    from srljax.dataflow.wire import mpi as mpi_streams
    from srljax.process import start_jax_on_one_core
    if role.kind in ("trainer", "policy") or (role.kind == "actor" and plan.d.inline_inference):
        start_jax_on_one_core()
    if role.kind == "actor" and plan.d.actor_nice:
        os.nice(plan.d.actor_nice)
    mpi_streams.check_same(comm, plan.samples.signature(), "the sample message layout")
    lead = comm.rank == 0
    if not lead:
        ctx = RunContext(start=ctx.start, resume=ctx.resume, trainer_comm=ctx.trainer_comm)
    from srljax.dataflow.launch.ending import EndOfRun
    end = EndOfRun(comm, plan.d.stuck_after_s, {r: str(plan.layout.role(r)) for r in range(comm.size)})
    worker = build_worker(plan, role, MpiTransport(comm, end), ctx)
    supervisor.arm(plan.d.stuck_after_s, plan.d.compile_grace_s)
    try:
        run_loop(worker)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: trainer 0 keeps what it learned since its last checkpoint (the other
        # ranks give it a moment before they end the job: launch.process.guarded).
        import signal
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if lead and role.kind == "trainer" and worker.checkpointer is not None:
            worker.save_checkpoint()           # (already saved when no update came since the last one)
            sys.stderr.write(f"srljax: checkpoint saved at update {worker.version}, "
                             f"{worker.total_steps:,} env steps\n")
            sys.stderr.flush()
        raise
    # Every rank meets rank 0 first (a rank that does not come is named: ending.py), then the
    # trainers compare parameters (a blocking gather, so only once all of them are known to be there).
    worker.control.finish()
    summary = None
    if role.kind == "trainer":
        summary = worker.summary()
        digests = worker.sync.gather(worker.params_digest())   # once, at the end
        if lead:
            summary["trainer_params_digests"] = digests
    supervisor.disarm()
    if lead:
        summary.update(layout_summary(plan))
        return summary
    return None


def layout_summary(plan: Plan) -> Dict[str, Any]:
    L = plan.layout
    return {"trainers": len(L.trainers), "policy_workers": len(L.policies), "buffers": len(L.buffers),
            "actors": len(L.actors), "algorithm": plan.algo_spec.name}


def run_local(cfg, ctx: RunContext, loss=None, plan: Optional[Plan] = None, env=None) -> Dict[str, Any]:
    """Every worker of the layout in this process, over in-process streams, polled in turn."""
    ctx.start = time.perf_counter() if ctx.start is None else ctx.start
    version = ctx.resume["meta"]["version"] if ctx.resume else 0
    plan = plan or Plan(cfg, 1, local=True, loss=loss, resume_version=version, env_factory=env)
    transport = LocalTransport()
    L = plan.layout
    order = L.trainers + L.policies + L.buffers + L.actors
    workers = {r: build_worker(plan, L.role(r), transport, ctx) for r in order}
    trainer = workers[L.trainers[0]]
    active: List[Any] = [workers[r] for r in reversed(order)]     # actors first, trainer last
    try:
        while active:
            supervisor.check_interrupt()
            for w in active:
                w.poll()
            active = [w for w in active if not w.done]
    finally:
        for w in active:
            w.close()
    summary = trainer.summary()
    summary["trainer_params_digests"] = [trainer.params_digest()]
    summary.update(layout_summary(plan))
    summary["in_process"] = True
    return summary
