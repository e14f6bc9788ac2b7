"""Fused mode's host loop and the device helpers both fused trainers share.

A fused run is a sequence of `trainer.chunk(fs, n)` calls, each `n` units of work (PPO updates, or
env-batch steps) inside one jitted program per device; `train` logs between calls, checkpoints, and
saves on Ctrl-C or SIGTERM. `sharded` jits a one-device function over a one-axis `Mesh` of the
local devices (`jax.shard_map`); `record_episodes` and `ring_mean` keep the latest episode returns.
The trainers: `fused.rollout.FusedTrainer` (PPO, V-trace) and `fused.replay.FusedReplayTrainer`
(DQN, SAC); both satisfy `learners.protocols.FusedLoopTrainer`.
"""
from __future__ import annotations

import sys
import time
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from srljax.dataflow.launch import supervisor

AXIS = "devices"
RING = 100  # completed-episode returns kept for the summary (last 100 episodes)


def sharded(mesh: Mesh, fn, in_specs, members: int = 0, one_by_one: bool = False):
    """`fn` written for one device, jitted over `mesh`: arguments with spec `P(AXIS)` (and every
    output) carry a leading device axis, one block per device; `P()` ones are replicated.
    Collectives over `AXIS` (pmean, psum, axis_index) inside `fn` span the devices. `members` N > 0:
    a population (`fused.population`): `fn` vmapped over a member axis after the device axis of
    every `P(AXIS)` argument and output; `one_by_one`: mapped over it by `lax.map` instead, member
    after member, each call unbatched (`map_members`)."""
    if members:
        mapped = tuple(spec == P(AXIS) for spec in in_specs)
        fn = map_members(fn, mapped) if one_by_one else jax.vmap(fn, in_axes=tuple(0 if m else None for m in mapped))

    def block(*args):
        args = [jax.tree.map(lambda x: x[0], a) if spec == P(AXIS) else a for a, spec in zip(args, in_specs)]
        return jax.tree.map(lambda x: x[None], fn(*args))

    return jax.jit(jax.shard_map(block, mesh=mesh, in_specs=in_specs, out_specs=P(AXIS), check_vma=False))


def map_members(fn, mapped):
    """`fn` over the leading member axis of the arguments flagged in `mapped`, one member after
    the other (`lax.map`): what vmap computes, with no op batched over members.

    A population's init runs this way: the orthogonal initialisers' QR (jaxlib's LAPACK kernels)
    batched over members splits the batch over XLA's CPU pool with `ParallelBatchMap`, which
    blocks its pool thread until the pieces are done; when every pool thread does so (two QRs at
    once on a two-thread pool) no thread is left to run the pieces and the program never ends
    (the stall of populations of 8 or more members on a multi-thread pool, seen in gdb: both
    `tf_XLAEigen` threads in `lapack_sorgqr_ffi` > `ParallelBatchMap` > `BlockingCounter::Wait`).
    One member at a time, each QR is one matrix, computed in place on the calling thread."""
    def call(*args):
        xs = tuple(a for a, m in zip(args, mapped) if m)

        def one(x):
            it = iter(x)
            return fn(*[next(it) if m else a for a, m in zip(args, mapped)])

        return jax.lax.map(one, xs)

    return call


def device_index(axis: Optional[str]):
    """This device's index on the mesh axis (0 without one)."""
    return jax.lax.axis_index(axis) if axis is not None else jnp.zeros((), jnp.int32)


def record_episodes(fs, returns, ended, ring_size: int, axis: Optional[str]):
    """Sum and count of the episodes completed (over all devices), and this device's ring of the
    latest `ring_size` returns (`fs` has `ring`, `ring_ptr`, `ring_count`): (fs, sum, count)."""
    r, e = returns.reshape(-1), ended.reshape(-1)
    ret_sum, count = jnp.sum(r * e), jnp.sum(e)
    if axis is not None:
        ret_sum, count = jax.lax.psum((ret_sum, count), axis)
    rank = jnp.cumsum(e.astype(jnp.int32))            # 1-based order of each completed episode
    total = rank[-1]
    keep = (e > 0) & (rank > total - ring_size)
    idx = jnp.where(keep, (fs.ring_ptr + rank - 1) % ring_size, ring_size)
    fs = fs.replace(ring=fs.ring.at[idx].set(r, mode="drop"), ring_ptr=(fs.ring_ptr + total) % ring_size,
                    ring_count=jnp.minimum(fs.ring_count + total, ring_size))
    return fs, ret_sum, count


def ring_mean(fs, member: Optional[int] = None) -> Optional[float]:
    """Mean return of the latest completed episodes in the device rings (up to 100 in all); of
    member `member` of a population (rings [devices, N, ...])."""
    ring, count = np.asarray(fs.ring), np.asarray(fs.ring_count)
    if member is not None:
        ring, count = ring[:, member], count[:, member]
    vals = np.concatenate([ring[d, : count[d]] for d in range(ring.shape[0])])
    return float(vals.mean()) if vals.size else None


def population_returns(fs, labels):
    """A population's (summary return, extra summary fields): the mean of its members' `ring_mean`,
    their aggregate (`stats.aggregate`) and, for a sweep, each setting's aggregate over its seeds
    (`sweep_results`) and the best setting by IQM (`best_setting`)."""
    from srljax.stats import aggregate
    each = [ring_mean(fs, i) for i in range(len(labels))]
    agg = aggregate(each)
    out = {"seeds": len({m["seed"] for m in labels}), "members": len(labels), **agg}
    swept = [k for k in labels[0] if k not in ("member", "seed")]
    if swept:
        groups: dict = {}
        for m, r in zip(labels, each):
            groups.setdefault(tuple(m[k] for k in swept), []).append(r)
        results = [{"setting": dict(zip(swept, key)), **aggregate(vals)} for key, vals in groups.items()]
        out["sweep_results"] = results
        scored = [r for r in results if "episode_return_iqm" in r]
        if scored:
            out["best_setting"] = max(scored, key=lambda r: r["episode_return_iqm"])["setting"]
    return agg.get("episode_return_mean"), out


def train(trainer, fs, logger=None, checkpointer=None, t0: Optional[float] = None, env_steps0: int = 0,
          pbt_state: Optional[dict] = None):
    """Run `trainer` (a `learners.protocols.FusedLoopTrainer`: a `FusedTrainer`, or
    `fused_replay.FusedReplayTrainer`) from `fs` (fresh, or restored from a checkpoint: the run goes on
    from its own count, and `env_steps0` is the checkpoint's env-step count) to
    `cfg.total_env_steps`; returns (final state, summary).

    The host loop of fused mode: one `trainer.chunk` call per log row, a checkpoint every
    `checkpoint_every_logs` rows and at the end. The trainer counts its progress in units of
    `trainer.unit_env_steps` env steps (`progress(fs)`: PPO updates, or env-batch steps) up to
    `trainer.total_units`; env steps are counted on the host (Python ints: no overflow). Ctrl-C or
    SIGTERM saves the state after the last completed call as a checkpoint first. With `pbt.interval`,
    population-based training's steps run between calls (`fused.pbt`; `pbt_state`: a checkpoint's
    `meta["pbt"]`), each recorded in its call's row (`pbt`) and the settings in the checkpoints."""
    t0 = time.perf_counter() if t0 is None else t0
    cfg, unit = trainer.cfg, trainer.unit_env_steps
    total = trainer.total_units
    per_log = max(1, cfg.log_every_env_steps // unit)
    start = done = trainer.progress(fs)
    steps_at = lambda units: int(env_steps0) + (units - start) * unit   # noqa: E731
    compile_s = 0.0
    train_s = 0.0        # time and env steps of every call after the first (which compiles)
    timed_steps = 0
    logs = 0
    saved = done
    pbt = None
    if cfg.pbt.interval:
        from srljax.dataflow.fused.pbt import PBT
        pbt = PBT(trainer, pbt_state)
    meta = lambda units: {"env_steps": steps_at(units), **(pbt.meta() if pbt else {})}   # noqa: E731

    def pbt_step(fs, units):    # (state, the step's record or None)
        if pbt is None or not pbt.due(units, total):
            return fs, None
        return pbt.step(fs, [ring_mean(fs, i) for i in range(pbt.members)], units // pbt.period)

    fs, pending = pbt_step(fs, done)          # a resume of a run that ended on a step: that step first
    try:
        while done < total:
            n = min(per_log, total - done)
            t = time.perf_counter()
            supervisor.check_interrupt()        # Ctrl-C / SIGTERM: raised here, between calls
            new, m = trainer.chunk(fs, n)
            now = trainer.progress(new)         # waits for the call
            fs = new
            dt = time.perf_counter() - t
            if logs == 0:
                compile_s = dt
            else:
                train_s += dt
                timed_steps += (now - done) * unit
            steps_done, done = (now - done) * unit, now
            logs += 1
            env_steps = steps_at(done)
            row = {"env_steps": env_steps, "wall_s": time.perf_counter() - t0, "steps_per_s": steps_done / dt,
                   "episode_return": m.pop("episode_return"), "policy_version": trainer.policy_version(fs), **m}
            fs, record = pbt_step(fs, done)
            if pending or record:       # the steps taken since the previous row
                row["pbt"], pending = [r for r in (pending, record) if r], None
            if logger is not None:
                logger.log(row)
            trainer.check(fs, done)
            if checkpointer is not None and (logs % cfg.checkpoint_every_logs == 0 or done >= total):
                checkpointer.save(done, fs, meta=meta(done))
                saved = done
    except KeyboardInterrupt:
        units = trainer.progress(fs)            # the state of the last completed call
        if checkpointer is not None and units > saved:
            checkpointer.save(units, fs, meta=meta(units))
            sys.stderr.write(f"srljax: checkpoint saved at {trainer.unit_name} {units}, {steps_at(units):,} env steps\n")
        raise
    env_steps = steps_at(done)
    wall = time.perf_counter() - t0
    labels = getattr(trainer, "labels", None)            # a population (`seeds`, `sweep`): its aggregate too
    ret, population = population_returns(fs, labels) if labels else (trainer.last_returns(fs), {})
    if pbt is not None:
        population["pbt"] = pbt.summary(population.get("best_member"))
    if labels:   # env_steps and steps_per_s count one member's steps (the budget); all members' too:
        population["steps_per_s_all_members"] = len(labels) * ((timed_steps / train_s) if train_s > 0 else 0.0)
    summary = {"env_steps": env_steps, "wall_s": wall,
               "steps_per_s": (timed_steps / train_s) if train_s > 0 else env_steps / wall,
               "steps_per_s_overall": env_steps / wall, "compile_s": compile_s,
               "episode_return": ret, **trainer.summary_counts(fs), **population}
    return fs, summary
