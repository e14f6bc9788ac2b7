"""The algorithms, by name: the one place fused and distributed mode look an algorithm up.

    spec = registry.get(cfg.algorithm.name)
    learner = spec.build(cfg, obs_space, action_space, axis_name=..., grad_reduce=..., loss=...)

An entry says what the algorithm learns from, and the mode builds that dataflow:

- `rollout`: on-policy batches of T steps of every env (fused: the jitted rollout; distributed:
  actors' posted samples, dropped beyond `distributed.max_staleness` policy versions);
- `replay`: a replay buffer, sampled many times per env step (fused mode: device-resident, inside
  the jitted program, `dataflow.fused.replay`; distributed mode: buffer workers that store, sample
  and take priorities back, `dataflow.replay_trainer`). Both read the built algorithm's
  `ReplaySettings` (`algo.replay`, `learners.replay_spec`): the one replay spec.

A new algorithm is a module with `build(cfg, obs_space, action_space, **build_args)` returning an
object that satisfies the protocol of its `learns_from` (`learners.protocols`: `RolloutAlgorithm`
or `ReplayAlgorithm`), and one `register(...)` call; the entry's `sections` name the config sections
(`srljax.sections`) its learner reads, whose `validate(cfg)` `config.validate` calls. Imports no
jax: the builder's module loads on first use.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Callable, Dict, Optional, Tuple

from srljax.config import declare_sections
from srljax.errors import UserError

LEARNS_FROM = ("rollout", "replay")


@dataclasses.dataclass(frozen=True)
class AlgorithmSpec:
    """One registry entry: an algorithm's name, what it learns from and where its builder is."""

    name: str
    """The name `algorithm.name` selects."""
    learns_from: str
    """Either "rollout" or "replay": the dataflow each mode builds for it (`LEARNS_FROM`)."""
    target: str
    """The builder as "module:function", imported on first use."""
    description: str
    """One line for listings."""
    sections: Tuple[str, ...] = ()
    """The config sections its learner reads besides the generic ones (e.g. ("dqn",)): `config.validate`
    calls each one's `validate(cfg)` when `algorithm.name` selects this entry."""
    actions: Tuple[str, ...] = ()
    """The action spaces it drives (`envs.space_check.check_algorithm`; (): all)."""

    def build(self, cfg, obs_space, action_space, *, axis_name: Optional[str] = None,
              grad_reduce: Optional[Callable] = None, loss: Optional[Callable] = None,
              num_updates: Optional[int] = None):
        """The learner for this config and these spaces: an object satisfying the protocol of
        `learns_from` (`learners.protocols`).

        Args:
            cfg: the run's config.
            obs_space: the env's observation space (one env, one agent).
            action_space: the env's action space (one env, one agent).
            axis_name: the device axis gradients are averaged over (fused mode, inside `shard_map`).
            grad_reduce: averages a gradient pytree across trainer processes (distributed mode).
            loss: a custom loss in place of the algorithm's own.
            num_updates: batches over the run (learning-rate schedules).

        Raises:
            UserError: an action space the algorithm does not drive (one line, before any write).
        """
        from srljax.envs.space_check import check_algorithm
        check_algorithm(self.name, cfg.env.id, action_space, self.actions)     # one line, before any write
        module, fn = self.target.split(":")
        builder = getattr(importlib.import_module(module), fn)
        return builder(cfg, obs_space, action_space, axis_name=axis_name, grad_reduce=grad_reduce, loss=loss,
                       num_updates=num_updates)


ALGORITHMS: Dict[str, AlgorithmSpec] = {}


def register(spec: AlgorithmSpec) -> AlgorithmSpec:
    """Add (or replace) an algorithm under `spec.name`; returns `spec`.

    Args:
        spec: the entry; its builder module is imported only when the algorithm is built.
    """
    if spec.learns_from not in LEARNS_FROM:
        raise ValueError(f"learns_from must be one of {LEARNS_FROM}, got {spec.learns_from!r}")
    declare_sections(spec.name, spec.sections)
    ALGORITHMS[spec.name] = spec
    return spec


def get(name: str) -> AlgorithmSpec:
    """The entry registered under `name`.

    Args:
        name: an algorithm's name (ppo, vtrace, dqn, sac, or one registered since).

    Raises:
        UserError: an unknown name (the message lists the registered ones).
    """
    if name not in ALGORITHMS:
        raise UserError(f"unknown algorithm {name!r}; algorithm.name is one of {', '.join(sorted(ALGORITHMS))}")
    return ALGORITHMS[name]


def make_algorithm(cfg, obs_space, action_space, **build_args):
    """The learner of the config's `algorithm.name`.

    Args:
        cfg: the run's config.
        obs_space: the env's observation space.
        action_space: the env's action space.
        **build_args: `axis_name`, `grad_reduce`, `loss`, `num_updates` (see `AlgorithmSpec.build`).
    """
    return get(cfg.algorithm.name).build(cfg, obs_space, action_space, **build_args)


def for_config(cfg) -> AlgorithmSpec:
    """The config's algorithm, checked against what the modes can run.

    Args:
        cfg: a config; its `algorithm.name` is looked up.
    """
    return get(cfg.algorithm.name)


register(AlgorithmSpec("ppo", "rollout", "srljax.learners.ppo:build",
                       "PPO-clip with GAE (ppo.*): on-policy, staleness-bounded in distributed mode",
                       sections=("ppo",)))
register(AlgorithmSpec("vtrace", "rollout", "srljax.learners.vtrace:build",
                       "IMPALA's V-trace targets and policy gradient (vtrace.*, optimiser from ppo.*)",
                       sections=("vtrace", "ppo")))
register(AlgorithmSpec("dqn", "replay", "srljax.learners.dqn:build",
                       "DQN (double, dueling, n-step, prioritized replay; dqn.*): off-policy; Ape-X under mpirun",
                       sections=("dqn",), actions=("Discrete",)))
register(AlgorithmSpec("sac", "replay", "srljax.learners.sac:build",
                       "SAC (twin critics, learned entropy temperature, squashed Gaussian; sac.*): Box actions; "
                       "distributed replay under mpirun", sections=("sac",), actions=("BoundedBox",)))
