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
    """A named (or given) config with dotted-key overrides, checked.

    Args:
        config: a named config (`python scripts/train.py --list-configs`) or a `Config` object.
        overrides: dotted keys and their values, as `--set` takes them: `{"ppo.lr": 1e-3,
            "env.num_envs": 16}`.

    Returns:
        The config, checked by `srljax.run.check` (field values, env name, mode, algorithm).

    Raises:
        UserError: an unknown config or key, a value of the wrong type or out of range.
    """
    cfg = presets.get(config) if isinstance(config, str) else config
    return check(C.override(cfg, overrides or {}))


def train(config: str | C.Config = "cartpole", *, overrides: Optional[Dict[str, Any]] = None,
          loss: Optional[Callable] = None, run_dir: Optional[str] = None, overwrite: bool = False,
          resume: bool = False, quiet: bool = True, env: Any = None, seeds: Optional[int] = None) -> RunResult:
    """Train a named or given config, in fused or distributed (in-process) mode by `config.mode`.

    Args:
        config: a named config (`python scripts/train.py --list-configs`) or a `Config` object.
        overrides: dotted keys and their values, as `--set` takes them: `{"total_env_steps": 200_000}`.
        loss: a custom loss in place of the algorithm's own, in both modes. Rollout algorithms:
            `loss(model, params, minibatch, key) -> (loss, metrics)`; DQN: `loss(learner, params,
            target_params, batch, weight_n) -> (loss, (td, q_sa))`; SAC: a critic loss
            `loss(learner, critic_params, state, batch, weight_n, key) -> (loss, (td, q_mean))`
            (docs/algorithms.md).
        run_dir: the run directory to write, as `scripts/train.py` does (config.json, metrics.jsonl,
            checkpoints, summary); None writes nothing.
        overwrite: replace an existing, non-empty `run_dir`.
        resume: continue the run in `run_dir` from its latest checkpoint.
        quiet: no progress output and no final `done:` line.
        env: your own env object instead of `env.id`: a JAX env (srljax's `JaxEnv` protocol, or a
            gymnax `Environment`, optionally `(env, params)`) for fused mode; for distributed mode any
            `gymnasium.vector.VectorEnv` (it sets env.num_envs and runs as one actor's one env batch),
            or a factory of gymnasium envs or of PettingZoo `ParallelEnv`s (`srljax.envs.custom`).
        seeds: fused mode: N runs in one program, seeds `seed` .. `seed + N - 1` (`--seeds N`, the
            `seeds` config field): each row and the summary hold every member's return
            (`episode_return_members`) and the summary their mean, IQM and 95% bootstrap intervals.

    Returns:
        The `RunResult`: summary, every metrics row, the final learner state (a population's:
        every leaf with a leading member axis; `RunResult.member(i)`).

    Raises:
        UserError: bad input (config, env, run directory, checkpoint), before anything is written.
    """
    cfg = presets.get(config) if isinstance(config, str) else config
    overrides = dict(overrides or {})
    if seeds is not None:
        overrides["seeds"] = seeds
    return run(C.override(cfg, overrides), run_dir=run_dir, resume=resume, overwrite=overwrite, loss=loss,
               quiet=quiet, env=env)
