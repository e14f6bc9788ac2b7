"""Experiment configs: frozen dataclasses, validation and command-line overrides.

A config is never mutated: `override(cfg, {"ppo.lr": 1e-3})` returns a new one. Every field has a
one-line docstring below it. The named configs are in `srljax.presets`. Here: the generic sections
(env, network, algorithm, rollout, distributed, logging) and `Config`; each algorithm's own section is
in `srljax.sections` (one module per algorithm, with its `validate`). This module imports nothing of
srljax but its errors, `srljax.sections` and `srljax.overrides` (the generic override machinery), so
every layer may read configs.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
from typing import Any, Dict, List, Optional, Tuple

from srljax import overrides as _o
from srljax.errors import UserError
from srljax.overrides import get, to_dict  # noqa: F401  (re-exported)
from srljax.sections.dqn import DQNConfig
from srljax.sections.pbt import PBTConfig
from srljax.sections.ppo import PPOConfig
from srljax.sections.sac import SACConfig
from srljax.sections.vtrace import VTraceConfig


# Names of srljax.learners.networks.ACTIVATIONS, kept here so validating a config imports no jax
# (tests check the two agree).
ACTIVATIONS = ("tanh", "relu", "elu", "swish")
CORES = ("feedforward", "lstm", "gru")
INITS = ("orthogonal", "lecun")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """The `env` section: which environment, how many copies, its own keyword arguments."""

    id: str = "gymnax/CartPole-v1"
    """Env name, FAMILY/NAME: gymnax/..., brax/..., gym/..., hns/quadrant, hns/full."""
    num_envs: int = 4
    """Env copies stepped together (fused mode: split evenly over devices)."""
    kwargs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    """Extra keyword arguments for the env (e.g. brax backend, episode_length)."""
    on_nonfinite: str = "stop"
    """CPU envs (distributed mode): a NaN/inf observation or reward "stop"s the run, or "reset"s its env batch (counted)."""


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """The `network` section: hidden sizes and activation of the networks (hide-and-seek's entity network:
    [entity embedding, dense/LSTM width])."""

    hidden: Tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy and value MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu, elu or swish."""
    init: str = "orthogonal"
    """Hidden layers' initialisation: orthogonal (gain sqrt 2, PPO's) or lecun (flax's default; DQN and SAC, fused)."""
    core: str = "feedforward"
    """PPO and V-trace: feedforward, lstm or gru; a recurrent core (width hidden[-1]) after the policy's
    MLP, its carry reset at episode starts; the critic stays feedforward. Entity observations always
    get the entity network's LSTM."""


@dataclasses.dataclass(frozen=True)
class RolloutConfig:
    """The `rollout` section: what every algorithm and both modes read about collecting experience
    (the fused loops, the distributed actors' samples and trainers), whatever learns from it."""

    rollout_len: int = 128
    """Env steps per env between updates (T): the fused program's rollout, a distributed actor's sample."""
    chunk_len: int = 0
    """Recurrent networks: steps per training chunk; minibatches take whole chunks (0: the whole rollout)."""
    max_nonfinite_updates: int = 10
    """Stop the run after this many consecutive updates skipped for non-finite gradients."""

    def validate(self) -> None:
        for name in ("rollout_len", "max_nonfinite_updates"):
            if not getattr(self, name) > 0:
                raise UserError(f"rollout.{name} must be > 0, got {getattr(self, name)}")
        if self.chunk_len < 0 or (self.chunk_len and self.rollout_len % self.chunk_len):
            raise UserError(f"rollout.chunk_len ({self.chunk_len}) must be 0 or divide rollout.rollout_len "
                            f"({self.rollout_len})")


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """How the experiment is spread over MPI ranks (or over workers in one process)."""

    trainers: int = 1
    """Trainer ranks; with several, gradients are averaged across them every update."""
    policy_workers: int = 1
    """Policy-worker ranks serving batched inference to actors; 0 needs `inline_inference`."""
    buffers: int = 0
    """Buffer ranks between actors and trainers (0: actors post straight to trainers)."""
    actors: int = 2
    """Actors when run in one process; under mpirun the ranks left over are the actors."""
    inline_inference: bool = False
    """Actors run the policy themselves on CPU (jax in every actor) instead of asking a policy worker."""
    ring_size: int = 2
    """Env batches per actor: one simulates while the others wait for actions."""
    posts_per_update: int = 2
    """Sample batches (each [rollout.rollout_len, env.num_envs / ring_size]) a trainer joins into one update."""
    max_staleness: int = 4
    """Samples more than this many policy versions behind the trainer are dropped (and counted)."""
    send_slots: int = 2
    """Sample buffers per actor in flight or being filled, beyond the ring (backpressure bound)."""
    random_opponents: float = 0.0
    """Two-team games: the fraction of episodes in which one team, drawn at random,
    plays uniformly random actions instead of the policy; those agents' steps are not learned from.
    Self-play alone can fit each team to the other's habits only; random opponents keep the
    policy good against behaviour it has not co-evolved with."""
    actor_nice: int = 0
    """Niceness actor ranks give themselves (0-19). Where ranks outnumber cores, a positive value
    lets trainers and policy workers run as soon as they have work, and actors use what is left:
    samples simulated while the trainer is starved would only be dropped as stale."""
    publish_every: int = 1
    """Trainer publishes parameters every this many updates."""
    stuck_after_s: float = 120.0
    """Under mpirun, a rank silent this long (stopped, or blocked in an env's step) ends the job, named (0: never)."""
    compile_grace_s: float = 600.0
    """Silence allowed to a rank in its first XLA compile of an update or a policy call."""
    log_interval_s: float = 1.0
    """Seconds between metric lines."""
    stop_at_return: Optional[float] = None
    """Stop early once the mean return of the last 100 episodes reaches this (None: run the budget)."""

    def validate(self) -> None:
        for name in ("trainers", "ring_size", "posts_per_update", "send_slots", "publish_every"):
            if getattr(self, name) < 1:
                raise UserError(f"distributed.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("policy_workers", "buffers", "max_staleness", "actors"):
            if getattr(self, name) < 0:
                raise UserError(f"distributed.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.random_opponents <= 1.0:
            raise UserError(f"distributed.random_opponents must be in [0, 1], got {self.random_opponents}")
        if not 0 <= self.actor_nice <= 19:
            raise UserError(f"distributed.actor_nice must be in 0..19, got {self.actor_nice}")
        if self.stuck_after_s < 0 or self.compile_grace_s < 0:
            raise UserError("distributed.stuck_after_s and distributed.compile_grace_s must be >= 0")
        if self.log_interval_s <= 0:
            raise UserError(f"distributed.log_interval_s must be > 0, got {self.log_interval_s}")
        if self.policy_workers == 0 and not self.inline_inference:
            raise UserError("distributed.policy_workers is 0: set distributed.inline_inference=true "
                            "or give at least one policy worker")


@dataclasses.dataclass(frozen=True)
class AlgorithmConfig:
    """The `algorithm` section: which registered algorithm learns, and an optional custom loss."""

    name: str = "ppo"
    """The algorithm, by its name in `srljax.learners.registry` (ppo, vtrace, dqn, sac)."""
    loss: str = ""
    """A custom loss by import path, "module:function", resolved on every rank (also under mpirun); "": the algorithm's own."""


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    """The `logging` section: experiment tracking besides metrics.jsonl (TensorBoard, W&B)."""

    tensorboard: bool = True
    """Write TensorBoard event files into the run directory: every metric (step = env_steps), the config as hyperparameters."""
    wandb: bool = False
    """Also log to Weights & Biases (pip install 'srljax[wandb]'; WANDB_MODE=offline needs no network)."""
    wandb_project: str = "srljax"
    """The W&B project the run is logged to."""


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole experiment: the top-level fields and one section per concern; `--set KEY=VALUE` and
    `overrides={...}` address its fields by dotted path (`ppo.lr`, `env.num_envs`)."""

    name: str = "custom"
    """Config name (a preset from --list-configs, or custom)."""
    description: str = ""
    """One line saying what this config is for."""
    mode: str = "fused"
    """fused: JAX envs inside the jitted program; distributed: CPU envs feeding trainers over streams."""
    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    """The environment."""
    network: NetworkConfig = dataclasses.field(default_factory=NetworkConfig)
    """The policy/value network."""
    algorithm: AlgorithmConfig = dataclasses.field(default_factory=AlgorithmConfig)
    """Which algorithm learns (fused and distributed mode alike)."""
    rollout: RolloutConfig = dataclasses.field(default_factory=RolloutConfig)
    """Steps per rollout (every algorithm, both modes), recurrent chunks, the non-finite guard."""
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    """PPO's epochs, optimiser and losses (algorithm.name=ppo; V-trace shares them)."""
    vtrace: VTraceConfig = dataclasses.field(default_factory=VTraceConfig)
    """V-trace's own settings (algorithm.name=vtrace)."""
    dqn: DQNConfig = dataclasses.field(default_factory=DQNConfig)
    """DQN's settings (algorithm.name=dqn): replay, targets, exploration (distributed mode: Ape-X)."""
    sac: SACConfig = dataclasses.field(default_factory=SACConfig)
    """SAC's settings (algorithm.name=sac; Box actions; fused mode, or distributed replay): replay, critics, entropy temperature."""
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)
    """Rank layout and dataflow settings (distributed mode only)."""
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    """Experiment tracking besides metrics.jsonl: TensorBoard, W&B."""
    total_env_steps: int = 500_000
    """Env steps to train for (summed over all envs)."""
    seed: int = 0
    """Random seed: the same seed gives the same run in fused mode."""
    seeds: int = 1
    """Fused mode: independent runs in one program (a population, vmapped): member i is the run of seed + i."""
    sweep: Dict[str, List[float]] = dataclasses.field(default_factory=dict)
    """Fused mode: float settings to sweep in the same program, {"ppo.lr": [1e-3, 3e-4]}: every combination, times `seeds`."""
    pbt: PBTConfig = dataclasses.field(default_factory=PBTConfig)
    """Fused mode: population-based training over the population, perturbing the `sweep` settings (pbt.interval > 0)."""
    log_every_env_steps: int = 25_000
    """Env steps between metric lines (fused mode: one jitted call per interval)."""
    checkpoint_every_logs: int = 10
    """Write a checkpoint every this many log intervals (and always at the end)."""
    keep_checkpoints: int = 3
    """Checkpoints kept on disk; older ones are deleted."""
    cpu_threads: int = 0
    """Fused mode on CPU: XLA's thread pool size (0: auto, one thread for env.num_envs <= 32, else every core)."""
    cpu_devices: int = 1
    """Fused mode on CPU: split env.num_envs over this many XLA CPU devices, whose programs run at once
    (data parallel, as over GPUs), so one run keeps every core busy (0: one per core, as many as divide
    env.num_envs). Takes effect only before jax's backend starts; XLA_FLAGS' own device count wins."""

    def steps_per_update(self) -> int:
        return self.env.num_envs * self.rollout.rollout_len

    def num_updates(self) -> int:
        return max(1, math.ceil(self.total_env_steps / self.steps_per_update()))


# --------------------------------------------------------------------------------------------
# Overrides (srljax.overrides, applied to Config) and validation

def field_paths(cls=Config, prefix: str = "") -> Dict[str, Any]:
    """Every settable dotted key with its type, e.g. {'ppo.lr': float, ...}."""
    return _o.field_paths(cls, prefix)


def parse_set(items, cls=None) -> Dict[str, Any]:
    """`KEY=VALUE` strings -> dict (see `srljax.overrides.parse_set`)."""
    return _o.parse_set(items, cls or Config)


def describe_fields(cls=Config, prefix: str = "") -> List[Dict[str, Any]]:
    """Every field, depth first: {"key", "type", "default", "doc", "section"}, docstrings from this file."""
    return _o.describe_fields(cls, prefix)


# Keys of config.json files written by an older srljax -> today's keys. `from_dict` (config.json,
# --resume) maps them silently; `override` (--set, `overrides={...}`) refuses them in one line naming
# the new key, so that a command line says what it sets.
RENAMED = {"distributed.algorithm": "algorithm.name", "distributed.vtrace_rho_clip": "vtrace.rho_clip",
           "distributed.vtrace_c_clip": "vtrace.c_clip", "ppo.rollout_len": "rollout.rollout_len",
           "ppo.chunk_len": "rollout.chunk_len", "ppo.max_nonfinite_updates": "rollout.max_nonfinite_updates"}


def override(cfg: Config, values: Dict[str, Any]) -> Config:
    """A new config with dotted keys replaced (see `srljax.overrides.override`); an old key of
    `RENAMED` is a UserError naming its new key."""
    return _o.override(cfg, values, RENAMED)


def with_values(cfg: Config, values: Dict[str, Any]) -> Config:
    """`cfg` with dotted keys set to `values` as they are, unchecked: a sweep's traced values
    (`dataflow.fused.population`), which no type check would take."""
    for key, value in values.items():
        cfg = _o._replace(cfg, key.split("."), value)
    return cfg


def from_dict(d: Dict[str, Any], cls: type = Config) -> Config:
    """Rebuild a config written by `to_dict` (config.json), also one from an older srljax (`RENAMED`);
    `cls`: a subclass of `Config` holding a user algorithm's own section."""
    return _o.from_dict(d, cls(), RENAMED)


# Algorithm name -> the config sections its learner reads, whose `validate(cfg)` `validate` calls.
# Filled by `srljax.learners.registry.register` from each entry's `sections` (the config layer names
# no algorithm). A section need not be a field of `Config`: a user's algorithm brings its own in a
# subclass of `Config` (`@dataclass(frozen=True) class MyConfig(Config): toy: ToyConfig = ...`),
# which overrides, validation, to_dict and `from_dict(d, MyConfig)` handle as they do `Config`.
ALGORITHM_SECTIONS: Dict[str, Tuple[str, ...]] = {}


def declare_sections(algorithm: str, sections: Tuple[str, ...]) -> None:
    """Record the config sections `algorithm` reads (each a field, of `Config` or of a subclass, whose
    value has `validate(cfg)`)."""
    fields = {f.name: f for f in dataclasses.fields(Config)}
    bad = [s for s in sections if not s.isidentifier()
           or (s in fields and not hasattr(getattr(Config(), s), "validate"))]
    if bad:
        raise ValueError(f"algorithm {algorithm!r}: {bad} are not config sections with validate(cfg)")
    ALGORITHM_SECTIONS[algorithm] = tuple(sections)


def check_sweep(cfg: Config) -> None:
    """`sweep`: keys of float settings (an int, bool or string setting changes array shapes or the
    program's structure, so it cannot vary inside one program), each with a non-empty list of numbers."""
    if not cfg.sweep:
        return
    if not isinstance(cfg.sweep, dict):
        raise UserError(f"sweep must be a dict of KEY: [values], got {cfg.sweep!r}")
    if cfg.mode != "fused":
        raise UserError(f"sweep: several runs in one program need fused mode (mode={cfg.mode})")
    paths = field_paths(type(cfg))
    for key, values in cfg.sweep.items():
        if key not in paths:
            raise UserError(f"sweep: unknown config key {key!r}")
        if paths[key] is not float:
            raise UserError(f"sweep: {key} ({getattr(paths[key], '__name__', paths[key])}) changes array shapes or "
                            "the program's structure and cannot vary inside one program; sweep float settings "
                            "(ppo.lr, ppo.ent_coef, ppo.gamma, ...) or run it once per value")
        if not isinstance(values, list) or not values or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            raise UserError(f"sweep: {key} needs a non-empty list of numbers, got {values!r}")


MAX_INT = 2 ** 53
"""Integer settings beyond this are refused (counters and sizes stay exact in float64 and int64)."""


def validate(cfg: Config) -> Config:
    """Check values a run cannot work with; raise a UserError naming the field.

    The sections the registry entry of `algorithm.name` reads (`ALGORITHM_SECTIONS`) check themselves;
    what needs the registries (env and algorithm names) is checked by `srljax.run.check`."""

    def positive(key, v):
        if not v > 0:
            raise UserError(f"{key} must be > 0, got {v}")

    for key, typ in field_paths(type(cfg)).items():
        value = get(cfg, key)
        if typ is int and isinstance(value, int) and abs(value) > MAX_INT:
            raise UserError(f"{key} must be at most {MAX_INT:,}, got {value:,}")
    if cfg.mode not in ("fused", "distributed"):
        raise UserError(f"mode must be 'fused' or 'distributed', got {cfg.mode!r}")
    for key in ("env.num_envs", "total_env_steps", "log_every_env_steps", "checkpoint_every_logs", "keep_checkpoints"):
        positive(key, get(cfg, key))
    if cfg.env.on_nonfinite not in ("stop", "reset"):
        raise UserError(f"env.on_nonfinite must be 'stop' or 'reset', got {cfg.env.on_nonfinite!r}")
    if cfg.seed < 0:
        raise UserError(f"seed must be >= 0, got {cfg.seed}")
    positive("seeds", cfg.seeds)
    if cfg.seeds > 1 and cfg.mode != "fused":
        raise UserError(f"seeds={cfg.seeds}: several runs in one program need fused mode (mode={cfg.mode})")
    check_sweep(cfg)
    cfg.pbt.validate(cfg)
    if cfg.cpu_threads < 0:
        raise UserError(f"cpu_threads must be >= 0 (0: auto), got {cfg.cpu_threads}")
    if cfg.cpu_devices < 0:
        raise UserError(f"cpu_devices must be >= 0 (0: one per core), got {cfg.cpu_devices}")
    if cfg.cpu_devices > 1 and cfg.env.num_envs % cfg.cpu_devices:
        raise UserError(f"env.num_envs={cfg.env.num_envs} does not split evenly over cpu_devices={cfg.cpu_devices}")
    cfg.rollout.validate()
    if not cfg.network.hidden or any(h <= 0 for h in cfg.network.hidden):
        raise UserError(f"network.hidden must be positive layer sizes, got {cfg.network.hidden}")
    if cfg.network.activation not in ACTIVATIONS:
        raise UserError(f"network.activation must be one of {', '.join(ACTIVATIONS)}")
    if cfg.network.core not in CORES:
        raise UserError(f"network.core must be one of {', '.join(CORES)}, got {cfg.network.core!r}")
    if cfg.mode == "distributed":
        cfg.distributed.validate()
    for section in ALGORITHM_SECTIONS.get(cfg.algorithm.name, ()):   # the registry entry's sections
        if not hasattr(cfg, section):
            raise UserError(f"algorithm {cfg.algorithm.name!r} reads config section {section!r}, which "
                            f"{type(cfg).__name__} lacks (pass a Config subclass with that field)")
        getattr(cfg, section).validate(cfg)
    if cfg.logging.wandb and importlib.util.find_spec("wandb") is None:
        raise UserError("logging.wandb=true needs the wandb package: pip install 'srljax[wandb]'")
    return cfg

