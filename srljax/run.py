"""The one run path: `scripts/train.py`, `srljax.train` and every mpirun rank go through `run`.

    result = run(cfg, run_dir="runs/x", resume=False, loss=None, quiet=True)

It checks the config against the registries, opens the run directory (rank 0 only: config.json,
metrics.jsonl, summary.json, learning_curve.png, checkpoints/), reads the checkpoint a resume
continues from, runs the config's mode, and writes the summary and the final "done:" line.
Everything that can be refused is refused before the run directory is written: a bad directory,
a corrupt or mismatched checkpoint, a device split or a network that does not fit the checkpoint.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from srljax import config as C
from srljax import process
from srljax.errors import UserError, WriteError


@dataclasses.dataclass
class RunResult:
    """What `run` returns: the summary, every metrics row, the final learner state and config.
    Under mpirun, ranks other than 0 get a result with `summary` None."""

    config: C.Config
    """The resolved config the run trained (what config.json holds)."""
    summary: Optional[Dict[str, Any]]
    """summary.json's contents: env_steps, wall_s, steps_per_s, episode_return, ... (None off rank 0)."""
    history: List[Dict[str, Any]]
    """Every metrics row, as metrics.jsonl holds them."""
    learner_state: Any = None
    """The final learner state (fused mode: device 0's, as host numpy; a population's: every leaf
    with a leading member axis, `member(i)`)."""
    run_dir: Optional[Path] = None
    """The run directory written, or None."""

    def member(self, i: int):
        """Member i's learner state of a population run (`seeds`, `sweep`: `summary["members"]` members,
        member i of seed `config.seed + i % seeds`).

        Args:
            i: the member, 0 .. members - 1.
        """
        from srljax.dataflow.fused.population import population_size
        n = population_size(self.config)
        if not n or not 0 <= i < n:
            raise UserError(f"member {i}: this run has {f'members 0..{n - 1}' if n else 'no population'}")
        import jax
        return jax.tree.map(lambda x: x[i], self.learner_state)

    def curve(self, key: str = "episode_return"):
        """(env steps, values) of the metrics rows that have `key`.

        Args:
            key: a metric of the rows, e.g. `episode_return`, `loss`, `steps_per_s`.
        """
        pts = [(h["env_steps"], h[key]) for h in self.history if h.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    def plot(self, key: str = "episode_return", ax=None, label: Optional[str] = None):
        """Plot `key` against env steps (inline in a notebook).

        Args:
            key: the metric to plot.
            ax: a matplotlib `Axes` to draw on; None makes a new figure.
            label: the line's label; None: the config's name.

        Returns:
            The matplotlib `Axes`.
        """
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3))[1]
        ax.plot(*self.curve(key), label=label or self.config.name)
        ax.set_xlabel("env steps")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
        return ax


def check(cfg: C.Config, env: Any = None) -> C.Config:
    """`config.validate`, plus what needs the registries: the env name (or the user's env object),
    the mode it fits, the algorithm."""
    from srljax.envs import custom
    from srljax.envs.registry import check_name, is_jax_env
    from srljax.learners import registry

    C.validate(cfg)
    if env is None:
        check_name(cfg.env.id)
        jax_env = is_jax_env(cfg.env.id)
    else:
        jax_env = custom.is_jax(env)
        if not jax_env and not custom.is_cpu(env):
            raise UserError(f"env {type(env).__name__} is not a JAX env (srljax JaxEnv, gymnax Environment), "
                            "a gymnasium VectorEnv, nor a factory of gymnasium or PettingZoo envs")
    if cfg.mode == "fused" and not jax_env:
        raise UserError(f"env {cfg.env.id!r} is a CPU env: fused mode needs a JAX env (gymnax/, brax/, a JaxEnv "
                        "or gymnax Environment object); use mode=distributed for CPU envs")
    if cfg.mode == "distributed" and env is not None and jax_env:
        raise UserError("distributed mode takes a gymnasium VectorEnv or a factory of gymnasium or PettingZoo "
                        "envs, not a JAX env; use mode=fused")
    registry.for_config(cfg)
    return cfg


def named_loss(cfg: C.Config, loss: Optional[Callable]) -> Optional[Callable]:
    """The custom loss: `loss`, or the function `algorithm.loss` names ("module:function"), imported
    here, so on every rank under mpirun."""
    if not cfg.algorithm.loss:
        return loss
    if loss is not None:
        raise UserError(f"a loss function was passed and algorithm.loss={cfg.algorithm.loss!r} is set: give one")
    import importlib
    if cfg.algorithm.loss.count(":") != 1 or not all(cfg.algorithm.loss.split(":")):
        raise UserError(f"algorithm.loss must be an import path module:function, got {cfg.algorithm.loss!r}")
    module, name = cfg.algorithm.loss.split(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"algorithm.loss={cfg.algorithm.loss!r} cannot be imported ({type(exc).__name__}: {exc}); "
                        "give module:function of a module on sys.path") from None
    if not callable(fn):
        raise UserError(f"algorithm.loss={cfg.algorithm.loss!r} is not a function")
    return fn


def default_run_dir(cfg: C.Config) -> str:
    return f"runs/{cfg.name}-{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(cfg: C.Config, *, run_dir: Optional[str] = None, resume: bool = False, overwrite: bool = False,
        loss: Optional[Callable] = None, quiet: bool = True, env: Any = None) -> RunResult:
    """Train `cfg` in its mode: what `scripts/train.py`, `srljax.train` and every mpirun rank call.

    Args:
        cfg: the config (`srljax.get_config`, or `srljax.presets.get(name)`).
        run_dir: the run directory to write (or, with `resume`, continue from its latest
            checkpoint); None writes nothing.
        resume: continue the run in `run_dir`.
        overwrite: replace an existing, non-empty `run_dir`.
        loss: a custom loss in place of the algorithm's own (see `srljax.train`).
        quiet: no progress output and no final `done:` line.
        env: a user's env object in place of `cfg.env.id` (`srljax.envs.custom`: a JAX env for
            fused mode; a gymnasium VectorEnv or a gymnasium or PettingZoo env factory for
            distributed mode in one process); config.json records it as `custom/NAME`.

    Returns:
        The `RunResult` (under mpirun, ranks other than 0 get `summary` None).

    Raises:
        UserError: bad input, refused before the run directory is written.
    """
    t0 = time.perf_counter()
    if env is not None:
        from srljax.envs.custom import fixed_settings, name_of
        cfg = C.override(cfg, {"env.id": name_of(env), **(fixed_settings(env) if cfg.mode == "distributed" else {})})
    process.prepare_fused_backend(cfg)      # the CPU pool's size, if jax's backend has not started yet
    check(cfg, env)
    loss = named_loss(cfg, loss)
    if cfg.mode == "distributed":
        from srljax.dataflow.launch.process import configure_process
        configure_process()          # under mpirun: supervisor and abort hook, before jax starts
    if cfg.mode == "fused":
        result = _run_fused(cfg, _Opened.open(cfg, run_dir, resume, overwrite), (loss, env), quiet, t0)
    else:
        result = _run_distributed(cfg, (run_dir, resume, overwrite), (loss, env), quiet, t0)
    if result.summary is not None and not quiet:
        print(done_line(result.summary, result.run_dir), file=sys.stderr)
    return result


def done_line(summary: Dict[str, Any], run_dir: Optional[Path]) -> str:
    ret = summary.get("episode_return")
    where = f"; run directory {run_dir}" if run_dir is not None else ""
    if summary.get("replay_ratio_target") is not None:       # distributed replay: the ratio held, priorities
        ratio = summary.get("replay_ratio")
        where = (f"; replay ratio {'n/a' if ratio is None else f'{ratio:.2f}'} (target {summary['replay_ratio_target']:g}), "
                 f"{summary.get('priority_updates_applied', 0):,} priority updates applied" + where)
    return (f"done: {summary['env_steps']:,} env steps in {summary['wall_s']:.1f}s "
            f"({summary['steps_per_s']:,.0f} steps/s after the first update), episode_return "
            f"{'n/a' if ret is None else f'{ret:.1f}'}{where}")


@dataclasses.dataclass
class _Opened:
    """A checked run directory, not yet written: where, its checkpointer, the checkpoint to resume."""

    path: Optional[Path] = None
    checkpointer: Any = None
    resume: Optional[Dict[str, Any]] = None      # {"state", "meta", "path"}
    overwrite: bool = False

    @classmethod
    def open(cls, cfg: C.Config, run_dir, resume: bool, overwrite: bool) -> "_Opened":
        from srljax.runlog import check_run_dir
        if run_dir is None:
            if resume:
                raise UserError("--resume needs --run-dir DIR of the run to continue")
            return cls()
        path = check_run_dir(run_dir, overwrite=overwrite, resume=resume)
        from srljax.checkpoint import Checkpointer
        ckpt = Checkpointer(path, keep=cfg.keep_checkpoints)
        return cls(path, ckpt, _read_resume(ckpt, cfg.mode) if resume else None, overwrite)

    def write(self, cfg: C.Config, quiet: bool):
        """Write config.json (creating a new run's directory) and open the metrics log."""
        from srljax.runlog import RunLogger, create_run_dir, write_json
        if self.path is not None and self.resume is None:
            create_run_dir(self.path, overwrite=self.overwrite)
        if self.path is not None:
            write_json(self.path / "config.json", C.to_dict(cfg))
        at = self.resume["meta"]["env_steps"] if self.resume else None
        if self.resume is not None and not quiet:
            meta = self.resume["meta"]
            version = f", policy version {meta['version']}" if "version" in meta else ""
            print(f"resuming from {self.resume['path']} (env step {meta['env_steps']:,}{version})", file=sys.stderr)
        return RunLogger(self.path, cfg.total_env_steps, quiet=quiet, resume_at=at, config=cfg)


def _read_resume(ckpt, mode: str) -> Dict[str, Any]:
    """The latest checkpoint of a run, checked against the mode: {"state", "meta", "path"}."""
    from srljax.checkpoint import CheckpointError
    latest = ckpt.latest()
    if latest is None:
        raise UserError(f"--resume: {ckpt.dir.parent} has no checkpoint to resume from")
    state, header = ckpt.restore(latest)            # CheckpointError (a UserError) when corrupt
    meta = header.get("meta", {})
    written = meta.get("mode", "fused")
    if written != mode or (mode == "distributed" and "learner" not in state):
        raise CheckpointError(f"checkpoint {latest} was written in {written} mode, this config runs in {mode} "
                              "mode; resume it with the config it was written with")
    return {"state": state, "meta": meta, "path": str(latest)}


def _identity(cfg: C.Config, opened: _Opened) -> Dict[str, Any]:
    out = {"config": cfg.name, "env": cfg.env.id, "algorithm": cfg.algorithm.name, "seed": cfg.seed,
           "num_envs": cfg.env.num_envs, "total_env_steps": cfg.total_env_steps}
    if opened.resume is not None:
        out["resumed_from_env_steps"] = int(opened.resume["meta"]["env_steps"])
    return out


def _run_fused(cfg, opened: _Opened, custom, quiet: bool, t0: float) -> RunResult:
    """`custom`: (loss, env), the user's own loss and env object (each may be None). Algorithms that
    learn from replay run in `dataflow.fused.replay`, the others in `dataflow.fused.rollout`; both
    under `fused.loop.train`, the one host loop."""
    from srljax.dataflow.fused.loop import train
    from srljax.learners import registry

    loss, env = custom
    if registry.for_config(cfg).learns_from == "replay":
        from srljax.dataflow.fused.replay import FusedReplayTrainer
        trainer = FusedReplayTrainer(cfg, loss=loss, env=env)           # env and action space: refused before any write
    else:
        from srljax.dataflow.fused.rollout import FusedTrainer
        trainer = FusedTrainer(cfg, loss=loss, env=env)       # env and device split: refused before any write
    try:
        fs = trainer.restore(opened.resume["state"], cfg.seed) if opened.resume else trainer.init(cfg.seed)
    except Exception as exc:
        _out_of_memory(exc, cfg)
        raise
    logger = opened.write(cfg, quiet)
    at = int(opened.resume["meta"].get("env_steps", 0)) if opened.resume else 0
    try:
        fs, summary = train(trainer, fs, logger=logger, checkpointer=opened.checkpointer, t0=t0, env_steps0=at,
                            pbt_state=opened.resume["meta"].get("pbt") if opened.resume else None)
    except Exception as exc:
        _out_of_memory(exc, cfg)
        raise
    summary = logger.finish({**summary, **_identity(cfg, opened)})
    plot = getattr(trainer.env, "plot_episode_stats", None)      # an env's own figures (hide-and-seek's stages)
    if plot is not None and opened.path is not None:
        plot(opened.path)
    return RunResult(cfg, summary, logger.history, trainer.host_learner(fs), opened.path)


def _out_of_memory(exc: Exception, cfg: C.Config) -> None:
    """XLA's RESOURCE_EXHAUSTED as one run-time line naming what to lower."""
    if "RESOURCE_EXHAUSTED" in str(exc):
        from srljax.errors import RunError
        raise RunError(f"out of device memory with env.num_envs={cfg.env.num_envs} x rollout.rollout_len="
                       f"{cfg.rollout.rollout_len}; lower env.num_envs (or rollout.rollout_len)") from None


def _run_distributed(cfg, where, custom, quiet: bool, t0: float) -> RunResult:
    """Rank 0 checks the run directory and the plan every rank will build, then writes; its
    verdict is shared, so bad input is one line from rank 0 and exit code 2 on every rank."""
    from srljax.dataflow import distributed
    from srljax.dataflow.build import RunContext

    loss, env = custom
    problem, logger, opened, plan = None, None, _Opened(), None
    if process.is_lead():
        try:
            opened = _Opened.open(cfg, *where)
            version = opened.resume["meta"]["version"] if opened.resume else 0
            plan = distributed.check(cfg, loss, version, env)
            if opened.resume is not None:
                plan.check_resume(opened.resume["state"]["learner"])
            logger = opened.write(cfg, quiet)
        except UserError as exc:
            problem = exc
    if process.under_mpirun():
        from mpi4py import MPI
        if MPI.COMM_WORLD.bcast(problem is not None, root=0) and not process.is_lead():
            sys.exit(2)                       # rank 0 says why, once
    if problem is not None:
        raise problem
    ctx = RunContext(logger=logger, checkpointer=opened.checkpointer, resume=opened.resume, start=t0)
    summary = distributed.run(cfg, ctx, loss=loss, plan=plan, env=env)
    if summary is None:
        return RunResult(cfg, None, [])
    try:
        summary = logger.finish({**summary, **_identity(cfg, opened)})
    except WriteError as exc:       # the other ranks have ended: rank 0 says which rank could not write
        raise WriteError(f"rank 0 (trainer 0) {exc}" if process.under_mpirun() else str(exc)) from None
    return RunResult(cfg, summary, logger.history, None, opened.path)
