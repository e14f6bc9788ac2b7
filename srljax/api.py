"""The notebook-facing API: make an env, pick or write an algorithm, train, look at the curve.

    import srljax
    result = srljax.train("cartpole", overrides={"total_env_steps": 200_000})
    result.summary["episode_return"]; result.plot()

A new algorithm is a loss `loss(model, params, minibatch, key) -> (loss, metrics)` passed as
`srljax.train(..., loss=my_loss)`; rollout, GAE, sharding, logging and checkpoints come from srljax.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

from srljax import config as C
from srljax import presets
from srljax.envs import make as make_env  # noqa: F401  (re-exported)
from srljax.run import RunResult, check, run

TrainResult = RunResult     # the name notebooks know


def get_config(config: str | C.Config = "cartpole", overrides: Optional[Dict[str, Any]] = None) -> C.Config:
    """A named (or given) config with dotted-key overrides, checked."""
    cfg = presets.get(config) if isinstance(config, str) else config
    return check(C.override(cfg, overrides or {}))


def train(config: str | C.Config = "cartpole", *, overrides: Optional[Dict[str, Any]] = None,
          loss: Optional[Callable] = None, run_dir: Optional[str] = None, overwrite: bool = False,
          resume: bool = False, quiet: bool = True, env: Any = None) -> RunResult:
    """Train a named or given config, in fused or distributed (in-process) mode by `config.mode`.

    With `run_dir`, the run directory is written as by scripts/train.py; otherwise nothing is.
    `env`: your own env object instead of `env.id`: a JAX env (srljax's `JaxEnv` protocol, or a
    gymnax `Environment`, optionally `(env, params)`) for fused mode; for distributed mode any
    `gymnasium.vector.VectorEnv` (it sets env.num_envs and runs as one actor's one env batch), or a
    factory of gymnasium envs or of PettingZoo `ParallelEnv`s (`srljax.envs.custom`).
    """
    cfg = presets.get(config) if isinstance(config, str) else config
    return run(C.override(cfg, overrides or {}), run_dir=run_dir, resume=resume, overwrite=overwrite, loss=loss,
               quiet=quiet, env=env)
