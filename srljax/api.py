"""The notebook-facing API: make an env, pick or write an algorithm, train, look at the curve.

    import srljax
    result = srljax.train("cartpole", overrides={"total_env_steps": 200_000})
    result.summary["episode_return"]; result.plot()

A new algorithm is a loss `loss(model, params, minibatch, key) -> (loss, metrics)` passed as
`srljax.train(..., loss=my_loss)`; rollout, GAE, sharding, logging and checkpoints come from srljax.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional

from srljax import config as C
from srljax.envs import make as make_env  # noqa: F401  (re-exported)


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: the summary, every metrics row, the final learner state and config."""

    config: C.Config
    summary: Dict[str, Any]
    history: List[Dict[str, Any]]
    learner_state: Any = None

    def curve(self, key: str = "episode_return"):
        pts = [(h["env_steps"], h[key]) for h in self.history if h.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    def plot(self, key: str = "episode_return", ax=None, label: Optional[str] = None):
        """Plot `key` against env steps (inline in a notebook); `label` defaults to the config name."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3))[1]
        ax.plot(*self.curve(key), label=label or self.config.name)
        ax.set_xlabel("env steps")
        ax.set_ylabel(key.replace("_", " "))
        ax.grid(alpha=0.3)
        return ax


def get_config(config: str | C.Config = "cartpole", overrides: Optional[Dict[str, Any]] = None) -> C.Config:
    cfg = C.get(config) if isinstance(config, str) else config
    return C.validate(C.override(cfg, overrides or {}))


def train(config: str | C.Config = "cartpole", *, overrides: Optional[Dict[str, Any]] = None,
          loss: Optional[Callable] = None, run_dir: Optional[str] = None, overwrite: bool = False,
          quiet: bool = True) -> TrainResult:
    """Train a named or given config, in fused or distributed (in-process) mode by `config.mode`.

    With `run_dir`, the run directory is written as by scripts/train.py; otherwise nothing is.
    """
    from srljax.runlog import RunLogger, prepare_run_dir, write_json

    cfg = get_config(config, overrides)
    path = prepare_run_dir(run_dir, overwrite=overwrite) if run_dir else None
    if path is not None:
        write_json(path / "config.json", C.to_dict(cfg))
    logger = RunLogger(path, cfg.total_env_steps, quiet=quiet)
    if cfg.mode == "fused":
        from srljax.checkpoint import Checkpointer
        from srljax.dataflow import fused

        ckpt = Checkpointer(path, keep=cfg.keep_checkpoints) if path is not None else None
        trainer, fs, summary = fused.train(cfg, logger=logger, loss=loss, checkpointer=ckpt)
        state = trainer.host_learner(fs)
    else:
        from srljax.dataflow.distributed import run_local

        kwargs = {"loss": loss} if loss is not None else {}
        summary = run_local(cfg, logger=logger, **kwargs)  # finishes the logger itself
        return TrainResult(config=cfg, summary=summary, history=logger.history)
    summary = logger.finish({**summary, "config": cfg.name, "env": cfg.env.id, "seed": cfg.seed})
    return TrainResult(config=cfg, summary=summary, history=logger.history, learner_state=state)
