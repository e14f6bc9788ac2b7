"""The written contracts: what an algorithm and a fused trainer must provide, as `typing.Protocol`s.

- `RolloutAlgorithm`: `learns_from="rollout"` (PPO, V-trace: the generic `learner.Learner`);
- `ReplayAlgorithm`: `learns_from="replay"` (DQN, SAC), in fused mode (`dataflow.fused.replay`)
  and in distributed mode (buffer workers, `dataflow.replay_trainer`);
- `FusedLoopTrainer`: what fused mode's host loop (`dataflow.fused.loop.train`) and `run` call on a trainer
  (`fused.rollout.FusedTrainer`, `fused.replay.FusedReplayTrainer`).

A registry builder (`registry.AlgorithmSpec.build`) returns an object satisfying the protocol of
its entry's `learns_from` (`ALGORITHM_PROTOCOLS`); `missing(obj, protocol)` names what an object
lacks, member by member and by signature (tests/test_architecture.py checks every registered
algorithm). Every method is pure and jittable unless it says otherwise. Imports no jax.
"""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Mapping, Optional, Protocol, Tuple, runtime_checkable

from srljax.learners.replay_spec import ReplaySettings


@runtime_checkable
class RolloutAlgorithm(Protocol):
    """Learns from on-policy batches of T steps of every env: time-major `[T, B, ...]` arrays
    obs, action, logp (behaviour), reward, terminated, truncated, final_obs (an agent axis after B in
    multi-agent games). Its state has `params`, `updates` (batches learned from), `skipped` and
    `consecutive_skips` (gradient steps skipped for non-finite gradients)."""

    model: Any
    """The network and action distribution; `recurrent` and `state_size` (0: feed-forward) size
    the dataflow's recurrent carry, `dist.mode(out)` is the evaluator's greedy action."""

    def init(self, key, example_batch: Mapping[str, Any]) -> Any:
        """The initial learner state from a PRNG key and an example batch with the rollout's structure."""

    def policy_params(self, state) -> Any:
        """What acting needs from the state (parameters, observation and value statistics): the
        pytree published to policy workers and actors."""

    def act(self, policy, obs, key) -> Tuple[Any, Any, Any]:
        """Sampled actions for a batch of observations: (action [B, ...], logp [B], value [B])."""

    def act_step(self, policy, obs, state, first, key, value: bool = True) -> Tuple[Any, Any, Any, Any]:
        """A recurrent model's step: (action, logp, value, next carry); `first` [B] resets the carry;
        `value=False` skips the critic (value zeros)."""

    def initial_state(self, n: int) -> Any:
        """The recurrent carry of `n` env columns at the start (feed-forward models: an empty array)."""

    def update(self, state, batch: Mapping[str, Any], env_ids=None) -> Tuple[Any, Dict[str, Any]]:
        """Learn from one batch: (state, metrics averaged over gradient steps); `env_ids` [B] are the
        global indices of the batch's env columns (they key the minibatch permutations)."""


@runtime_checkable
class ReplayAlgorithm(Protocol):
    """Learns from transitions sampled from a replay buffer. A transition is {"obs", "action",
    "reward" (the n-step return), "discount" (gamma^m, 0 after a termination), "next_obs"}. Built
    with `axis_name` (fused, several devices) or `grad_reduce` (several trainer processes), its
    `update` averages gradients (`offpolicy.average`) before the optimiser step, so every replica
    takes the same step. Its state has `params` and `updates` (gradient steps taken)."""

    replay: ReplaySettings
    """The replay spec both modes read: buffer, batch, schedule, n-step, prioritized sampling, the
    distributed replay ratio and Ape-X exploration (`replay_spec.ReplaySettings`)."""

    metric_keys: Tuple[str, ...]
    """The names of the per-gradient-step metrics `update` returns (averaged per log row)."""

    def init(self, key, example_obs) -> Any:
        """The initial learner state from a PRNG key and a batch of observations [B, ...]."""

    def act(self, params, obs_b, key, env_steps) -> Any:
        """Fused mode: the actions [B, ...] the envs take and the buffer stores, with the exploration
        the schedule gives at `env_steps` (DQN: epsilon-greedy; SAC: a squashed Gaussian)."""

    def update(self, state, batch: Mapping[str, Any], weight_n) -> Tuple[Any, Dict[str, Any], Any]:
        """One gradient step on a sampled batch of N transitions with importance weights [N] (1 under
        uniform sampling): (state, metrics, |TD error| [N], the new priorities)."""

    def host_metrics(self, env_steps: int) -> Dict[str, float]:
        """Figures known from the schedule alone at `env_steps` (DQN's epsilon), for the log row (host code)."""

    def greedy(self, params, obs_b) -> Any:
        """The evaluation policy on the state's `params`: actions [B, ...] without exploration (DQN:
        argmax Q; SAC: the squashed mean)."""

    def policy_params(self, state) -> Any:
        """Distributed mode: the pytree the trainer publishes to policy workers and actors."""

    def actor_step(self, params, obs_b, key) -> Tuple[Any, Any, Any]:
        """Distributed mode, on `policy_params`: (action [B, ...], logp [B], value [B]); the actors'
        own exploration (`ReplaySettings.apex_epsilon`) is added around it."""


@runtime_checkable
class FusedLoopTrainer(Protocol):
    """Fused mode's trainer: env, acting and learning in jitted programs over the local devices;
    `fused.loop.train` drives it chunk by chunk from host code. `fs` is its run state (a pytree with a
    leading device axis), what checkpoints hold."""

    cfg: Any
    """The run's `srljax.config.Config` (`total_env_steps`, `log_every_env_steps`, `checkpoint_every_logs`)."""

    unit_name: str
    """What one unit of progress is called in messages ("update", "env-batch step")."""

    @property
    def unit_env_steps(self) -> int:
        """Env steps per unit of progress (all envs, all devices)."""

    @property
    def total_units(self) -> int:
        """Units of progress the run takes to reach `cfg.total_env_steps`."""

    def init(self, seed: int) -> Any:
        """A fresh run state."""

    def restore(self, state: Mapping[str, Any], seed: int) -> Any:
        """A run state from a checkpoint's state dict (the learner always; the rest when its layout fits)."""

    def chunk(self, fs, n: int, /) -> Tuple[Any, Dict[str, Any]]:
        """Run `n` units: (state, the interval's metrics as host numbers, with `episode_return`).
        Called positionally (the trainers name `n` for their unit: `n_updates`, `n_steps`)."""

    def progress(self, fs) -> int:
        """Units taken so far (waits for `fs`)."""

    def policy_version(self, fs) -> int:
        """The learner's version for the log row (updates, or gradient steps)."""

    def check(self, fs, done: int) -> None:
        """Raise (e.g. `NonFiniteError`) when the run must stop after `done` units."""

    def summary_counts(self, fs) -> Dict[str, Any]:
        """Counts for the run summary: updates, devices, skipped_steps."""

    def last_returns(self, fs) -> Optional[float]:
        """Mean return of the latest completed episodes (up to 100), None before the first."""

    def host_learner(self, fs) -> Any:
        """The learner state of device 0 as host numpy (what `srljax.train` returns)."""


ALGORITHM_PROTOCOLS = {"rollout": RolloutAlgorithm, "replay": ReplayAlgorithm}
"""The protocol of each `AlgorithmSpec.learns_from`."""


def members(protocol) -> List[str]:
    """The public members a protocol declares (its own and its protocol bases')."""
    names: Dict[str, None] = {}
    for cls in reversed(protocol.__mro__):
        if cls is object or cls is Protocol or not getattr(cls, "_is_protocol", False):
            continue
        for name in list(getattr(cls, "__annotations__", {})) + list(vars(cls)):
            if not name.startswith("_"):
                names[name] = None
    return list(names)


def _params(fn) -> List[inspect.Parameter]:
    return list(inspect.signature(fn).parameters.values())


def missing(obj, protocol) -> List[str]:
    """What `obj` lacks of `protocol`, one line each: absent members, and methods whose parameters
    differ (the protocol's in order, by name unless positional-only there, optional where optional
    there, no further required parameter); [] when it conforms."""
    out = []
    for name in members(protocol):
        if not hasattr(obj, name):
            out.append(f"{name}: missing")
            continue
        declared = inspect.getattr_static(protocol, name, None)
        if not inspect.isfunction(declared):
            continue                               # a data member or property: present is enough
        have = getattr(obj, name)
        if not callable(have):
            out.append(f"{name}: not callable")
            continue
        want = _params(declared)[1:]                              # without self
        got = _params(have)
        positional = [p for p in got if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        extra = [p.name for p in got[len(want):] if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL,
                                                                                            p.VAR_KEYWORD)]
        differ = len(positional) < len(want) or any(
            (w.kind != w.POSITIONAL_ONLY and w.name != g.name) or (w.default is not w.empty and g.default is g.empty)
            for w, g in zip(want, positional))
        if differ or extra:
            sig = inspect.signature(declared)
            sig = sig.replace(parameters=want, return_annotation=sig.empty)
            out.append(f"{name}{inspect.signature(have)}: the protocol has {name}{sig}")
    return out
