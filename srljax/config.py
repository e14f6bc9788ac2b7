"""Experiment configs: frozen dataclasses, validation and command-line overrides.

A config is never mutated: `override(cfg, {"ppo.lr": 1e-3})` returns a new one. Every field has a
one-line docstring below it. The named configs are in `srljax.presets`. This module imports
nothing of srljax but its errors and `srljax.overrides` (the generic override machinery), so every
layer may read configs.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import math
from typing import Any, Dict, List, Optional, Tuple

from srljax import overrides as _o
from srljax.algo_configs import DQNConfig, VTraceConfig
from srljax.errors import UserError
from srljax.overrides import get, override, to_dict  # noqa: F401  (re-exported)


# Names of srljax.learners.networks.ACTIVATIONS, kept here so validating a config imports no jax
# (tests check the two agree).
ACTIVATIONS = ("tanh", "relu", "elu", "swish")
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


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """The `ppo` section: rollout length, epochs, optimiser and losses of PPO (V-trace shares its optimiser
    and rollout fields)."""

    rollout_len: int = 128
    """Env steps per env between updates (T)."""
    epochs: int = 4
    """Passes over each batch."""
    minibatches: int = 4
    """Minibatches per epoch; each holds T / minibatches steps of every env."""
    lr: float = 2.5e-4
    """Adam learning rate."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """PPO ratio clip."""
    clip_value: bool = True
    """Clip the value update around the old value estimate, as the policy ratio is clipped."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    normalize_obs: bool = False
    """Running mean/std normalisation of observations (statistics averaged over devices)."""
    normalize_adv: bool = True
    """Normalise advantages within each minibatch."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this before learning (episode returns are logged unscaled)."""
    max_nonfinite_updates: int = 10
    """Stop the run after this many consecutive updates skipped for non-finite gradients."""
    normalize_value: bool = False
    """Standardise value targets by their running mean and std (the value head predicts standardised targets)."""
    chunk_len: int = 0
    """Recurrent networks: steps per training chunk; minibatches take whole chunks (0: the whole rollout)."""


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
    """Sample batches (each [ppo.rollout_len, env.num_envs / ring_size]) a trainer joins into one update."""
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
class SACConfig:
    """The `sac` section (algorithm.name=sac): replay, critics, entropy temperature."""

    lr: float = 1e-3
    """Adam learning rate of the actor and the twin critics."""
    alpha_lr: float = 1e-3
    """Adam learning rate of log alpha, the entropy temperature."""
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Target critics <- tau * critics + (1 - tau) * target critics after every gradient step."""
    n_step: int = 1
    """Steps summed into each target; an episode end inside the window cuts it short."""
    buffer_size: int = 100_000
    """Replay capacity in transitions (the oldest are overwritten)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    learning_starts: int = 1_000
    """Env steps (all envs) of uniformly random actions collected before the first gradient step."""
    train_every: int = 1
    """Env-batch steps (each env.num_envs env steps) between rounds of gradient steps."""
    gradient_steps: int = 1
    """Gradient steps per round (replay ratio: gradient_steps * batch_size / (train_every * num_envs))."""
    init_alpha: float = 1.0
    """Entropy temperature at the start."""
    learn_alpha: bool = True
    """Learn log alpha so that the policy's entropy moves toward target_entropy (false: alpha stays init_alpha)."""
    target_entropy: Optional[float] = None
    """Target entropy of the squashed policy in [-1, 1]^A (None: -A, minus the action dimension)."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip of the actor's and the critics' gradients."""
    prioritized: bool = False
    """Prioritized replay (proportional to priority^alpha, the critics' mean |TD|; importance weights (N P)^-beta)."""
    alpha: float = 0.6
    """Prioritized replay: how strongly priorities shape sampling (0: uniform)."""
    beta: float = 0.4
    """Prioritized replay: importance-weight exponent (1: full correction)."""
    replay_ratio: Optional[float] = None
    """Distributed mode: samples trained on per env step, held both ways (None: as gradient_steps implies)."""

    def validate(self, num_envs: int) -> None:
        if self.replay_ratio is not None and not self.replay_ratio > 0:
            raise UserError(f"sac.replay_ratio must be > 0 or null, got {self.replay_ratio}")
        if not (0.0 <= self.alpha <= 1.0 and 0.0 <= self.beta <= 1.0):
            raise UserError(f"sac.alpha and sac.beta must be in [0, 1], got {self.alpha}, {self.beta}")
        for name in ("lr", "alpha_lr", "tau", "n_step", "buffer_size", "batch_size", "train_every",
                     "gradient_steps", "init_alpha", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise UserError(f"sac.{name} must be > 0, got {getattr(self, name)}")
        if max(self.batch_size, num_envs) > self.buffer_size:
            raise UserError(f"sac.batch_size ({self.batch_size}) and env.num_envs ({num_envs}) must be <= sac.buffer_size ({self.buffer_size})")
        if not (0.0 <= self.gamma <= 1.0 and self.tau <= 1.0 and self.learning_starts >= 0):
            raise UserError("sac.gamma must be in [0, 1], sac.tau in (0, 1] and sac.learning_starts >= 0")


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
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    """The learner's hyperparameters: rollout, epochs, optimiser, losses (PPO; V-trace shares them)."""
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
    log_every_env_steps: int = 25_000
    """Env steps between metric lines (fused mode: one jitted call per interval)."""
    checkpoint_every_logs: int = 10
    """Write a checkpoint every this many log intervals (and always at the end)."""
    keep_checkpoints: int = 3
    """Checkpoints kept on disk; older ones are deleted."""
    cpu_threads: int = 0
    """Fused mode on CPU: XLA's thread pool size (0: auto, one thread for env.num_envs <= 32, else every core)."""

    def steps_per_update(self) -> int:
        return self.env.num_envs * self.ppo.rollout_len

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


# Keys of config.json files written before the algorithm got its own section.
RENAMED = {"distributed.algorithm": "algorithm.name", "distributed.vtrace_rho_clip": "vtrace.rho_clip",
           "distributed.vtrace_c_clip": "vtrace.c_clip"}


def from_dict(d: Dict[str, Any]) -> Config:
    """Rebuild a config written by `to_dict` (config.json), also one from an older srljax."""
    return _o.from_dict(d, Config(), RENAMED)


MAX_INT = 2 ** 53
"""Integer settings beyond this are refused (counters and sizes stay exact in float64 and int64)."""


def validate(cfg: Config) -> Config:
    """Check values a run cannot work with; raise a UserError naming the field.

    What needs the registries (env and algorithm names) is checked by `srljax.run.check`."""

    def positive(key, v):
        if not v > 0:
            raise UserError(f"{key} must be > 0, got {v}")

    for key, typ in field_paths(type(cfg)).items():
        value = get(cfg, key)
        if typ is int and isinstance(value, int) and abs(value) > MAX_INT:
            raise UserError(f"{key} must be at most {MAX_INT:,}, got {value:,}")
    if cfg.mode not in ("fused", "distributed"):
        raise UserError(f"mode must be 'fused' or 'distributed', got {cfg.mode!r}")
    for key in ("env.num_envs", "total_env_steps", "log_every_env_steps", "ppo.rollout_len", "ppo.epochs",
                "ppo.minibatches", "ppo.lr", "ppo.max_grad_norm", "ppo.reward_scale", "checkpoint_every_logs",
                "keep_checkpoints", "ppo.max_nonfinite_updates"):
        positive(key, get(cfg, key))
    for key in ("ppo.gamma", "ppo.gae_lambda"):
        v = getattr(cfg.ppo, key.split(".")[1])
        if not 0.0 <= v <= 1.0:
            raise UserError(f"{key} must be in [0, 1], got {v}")
    for key in ("ppo.clip_eps", "ppo.vf_coef", "ppo.ent_coef", "ppo.adam_eps"):
        if getattr(cfg.ppo, key.split(".")[1]) < 0:
            raise UserError(f"{key} must be >= 0")
    if cfg.env.on_nonfinite not in ("stop", "reset"):
        raise UserError(f"env.on_nonfinite must be 'stop' or 'reset', got {cfg.env.on_nonfinite!r}")
    if cfg.seed < 0:
        raise UserError(f"seed must be >= 0, got {cfg.seed}")
    if cfg.cpu_threads < 0:
        raise UserError(f"cpu_threads must be >= 0 (0: auto), got {cfg.cpu_threads}")
    if cfg.mode == "fused" and cfg.ppo.rollout_len % cfg.ppo.minibatches:
        raise UserError(f"ppo.rollout_len ({cfg.ppo.rollout_len}) must divide into ppo.minibatches "
                        f"({cfg.ppo.minibatches}) equal parts")
    if cfg.ppo.chunk_len < 0 or (cfg.ppo.chunk_len and cfg.ppo.rollout_len % cfg.ppo.chunk_len):
        raise UserError(f"ppo.chunk_len ({cfg.ppo.chunk_len}) must be 0 or divide ppo.rollout_len ({cfg.ppo.rollout_len})")
    if not cfg.network.hidden or any(h <= 0 for h in cfg.network.hidden):
        raise UserError(f"network.hidden must be positive layer sizes, got {cfg.network.hidden}")
    if cfg.network.activation not in ACTIVATIONS:
        raise UserError(f"network.activation must be one of {', '.join(ACTIVATIONS)}")
    if cfg.network.init not in INITS:
        raise UserError(f"network.init must be one of {', '.join(INITS)}, got {cfg.network.init!r}")
    if cfg.vtrace.rho_clip <= 0 or cfg.vtrace.c_clip <= 0:
        raise UserError("vtrace.rho_clip and vtrace.c_clip must be > 0")
    if cfg.mode == "distributed":
        cfg.distributed.validate()
    if cfg.algorithm.name == "dqn":
        cfg.dqn.validate(cfg.env.num_envs)
    if cfg.algorithm.name == "sac":
        cfg.sac.validate(cfg.env.num_envs)
    if cfg.logging.wandb and importlib.util.find_spec("wandb") is None:
        raise UserError("logging.wandb=true needs the wandb package: pip install 'srljax[wandb]'")
    return cfg

