"""Experiment configs: frozen dataclasses, validation and command-line overrides.

A config is never mutated: `override(cfg, {"ppo.lr": 1e-3})` returns a new one. Every field has a
one-line docstring below it. The named configs are in `srljax.presets`. This module imports
nothing of srljax but its errors, so every layer may read configs.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import math
import typing
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from srljax.errors import UserError


# Names of srljax.learners.networks.ACTIVATIONS, kept here so validating a config imports no jax
# (tests check the two agree).
ACTIVATIONS = ("tanh", "relu", "elu", "swish")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
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
    hidden: Tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the policy and value MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh, relu, elu or swish."""


@dataclasses.dataclass(frozen=True)
class PPOConfig:
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
    name: str = "ppo"
    """The algorithm, by its name in `srljax.learners.registry` (ppo, vtrace); both modes read it."""


@dataclasses.dataclass(frozen=True)
class VTraceConfig:
    rho_clip: float = 1.0
    """V-trace: clip of the importance weights in the targets and the policy gradient (rho bar)."""
    c_clip: float = 1.0
    """V-trace: clip of the trace-cutting weights (c bar)."""


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    tensorboard: bool = True
    """Write TensorBoard event files into the run directory: every metric (step = env_steps), the config as hyperparameters."""
    wandb: bool = False
    """Also log to Weights & Biases (pip install 'srljax[wandb]'; WANDB_MODE=offline needs no network)."""
    wandb_project: str = "srljax"
    """The W&B project the run is logged to."""


@dataclasses.dataclass(frozen=True)
class Config:
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

    def steps_per_update(self) -> int:
        return self.env.num_envs * self.ppo.rollout_len

    def num_updates(self) -> int:
        return max(1, math.ceil(self.total_env_steps / self.steps_per_update()))


# --------------------------------------------------------------------------------------------
# Overrides and validation

def field_paths(cls=Config, prefix: str = "") -> Dict[str, Any]:
    """Every settable dotted key with its type, e.g. {'ppo.lr': float, ...}."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            out.update(field_paths(t, prefix + f.name + "."))
        else:
            out[prefix + f.name] = t
    return out


def _coerce(key: str, value: Any, typ: Any) -> Any:
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin is typing.Union or (origin is not None and type(None) in args):
        return None if value is None else _coerce(key, value, [a for a in args if a is not type(None)][0])
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if typ is bool:
        word = value.strip().lower() if isinstance(value, str) else value
        if word in ("true", "false", "1", "0") or isinstance(value, bool) or (type(value) is int and value in (0, 1)):
            return word in ("true", "1") if isinstance(word, str) else bool(value)
    elif typ is int:
        if number and (isinstance(value, int) or value.is_integer()):
            return int(value)
    elif typ is float:
        if number and not math.isfinite(value):
            raise UserError(f"--set {key}: must be finite, got {value!r}")
        if number:
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
    elif origin in (tuple, typing.Tuple):
        if isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    elif origin in (dict, typing.Dict):
        if isinstance(value, dict):
            return dict(value)
    else:
        return value
    raise UserError(f"--set {key}: expected {getattr(typ, '__name__', typ)}, got {value!r}")


def override(cfg: Config, values: Dict[str, Any]) -> Config:
    """A new config with dotted keys replaced; unknown keys and wrong types are UserErrors."""
    paths = field_paths(type(cfg))
    for key, value in values.items():
        if key not in paths:
            raise UserError(f"unknown config key {key!r}; valid keys: {', '.join(sorted(paths))}")
        cfg = _replace(cfg, key.split("."), _coerce(key, value, paths[key]))
    return cfg


def _replace(obj, parts, value):
    if len(parts) == 1:
        return dataclasses.replace(obj, **{parts[0]: value})
    child = getattr(obj, parts[0])
    return dataclasses.replace(obj, **{parts[0]: _replace(child, parts[1:], value)})


def parse_set(items, cls=None) -> Dict[str, Any]:
    """`KEY=VALUE` strings -> dict. A string field takes VALUE as it is (or a JSON string); other
    VALUEs are JSON when they parse, else strings (booleans also read true/false/True/False/1/0)."""
    paths, out = field_paths(cls or Config), {}
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if paths.get(key.strip()) in (str, Optional[str]) and not isinstance(value, str):
            value = raw
        out[key.strip()] = value
    return out


MAX_INT = 2 ** 53
"""Integer settings beyond this are refused (counters and sizes stay exact in float64 and int64)."""


def _get(cfg, key: str):
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def validate(cfg: Config) -> Config:
    """Check values a run cannot work with; raise a UserError naming the field.

    What needs the registries (env and algorithm names) is checked by `srljax.run.check`."""

    def positive(key, v):
        if not v > 0:
            raise UserError(f"{key} must be > 0, got {v}")

    for key, typ in field_paths(type(cfg)).items():
        value = _get(cfg, key)
        if typ is int and isinstance(value, int) and abs(value) > MAX_INT:
            raise UserError(f"{key} must be at most {MAX_INT:,}, got {value:,}")
    if cfg.mode not in ("fused", "distributed"):
        raise UserError(f"mode must be 'fused' or 'distributed', got {cfg.mode!r}")
    for key in ("env.num_envs", "total_env_steps", "log_every_env_steps", "ppo.rollout_len", "ppo.epochs",
                "ppo.minibatches", "ppo.lr", "ppo.max_grad_norm", "ppo.reward_scale", "checkpoint_every_logs",
                "keep_checkpoints", "ppo.max_nonfinite_updates"):
        positive(key, _get(cfg, key))
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
    if cfg.mode == "fused" and cfg.ppo.rollout_len % cfg.ppo.minibatches:
        raise UserError(f"ppo.rollout_len ({cfg.ppo.rollout_len}) must divide into ppo.minibatches "
                        f"({cfg.ppo.minibatches}) equal parts")
    if cfg.ppo.chunk_len < 0 or (cfg.ppo.chunk_len and cfg.ppo.rollout_len % cfg.ppo.chunk_len):
        raise UserError(f"ppo.chunk_len ({cfg.ppo.chunk_len}) must be 0 or divide ppo.rollout_len ({cfg.ppo.rollout_len})")
    if not cfg.network.hidden or any(h <= 0 for h in cfg.network.hidden):
        raise UserError(f"network.hidden must be positive layer sizes, got {cfg.network.hidden}")
    if cfg.network.activation not in ACTIVATIONS:
        raise UserError(f"network.activation must be one of {', '.join(ACTIVATIONS)}")
    if cfg.vtrace.rho_clip <= 0 or cfg.vtrace.c_clip <= 0:
        raise UserError("vtrace.rho_clip and vtrace.c_clip must be > 0")
    if cfg.mode == "distributed":
        cfg.distributed.validate()
    if cfg.logging.wandb and importlib.util.find_spec("wandb") is None:
        raise UserError("logging.wandb=true needs the wandb package: pip install 'srljax[wandb]'")
    return cfg


def to_dict(cfg: Config) -> Dict[str, Any]:
    return dataclasses.asdict(cfg)


def describe_fields(cls=Config, prefix: str = "") -> List[Dict[str, Any]]:
    """Every field, depth first: {"key", "type", "default", "doc", "section"} (a section is a nested
    config, default None); type and docstring as written in this file, read with ast."""
    if not prefix:
        tree = ast.parse(Path(__file__).read_text())
        _DOCS.update({(c.name, a.target.id): (ast.unparse(a.annotation), " ".join(d.value.value.split()) if
                      isinstance(d, ast.Expr) and isinstance(d.value, ast.Constant) else "")
                      for c in tree.body if isinstance(c, ast.ClassDef)
                      for a, d in zip(c.body, c.body[1:] + [None]) if isinstance(a, ast.AnnAssign)})
    out = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        sec = dataclasses.is_dataclass(default)
        typ, doc = _DOCS[cls.__name__, f.name]
        out.append({"key": prefix + f.name, "type": typ, "default": None if sec else default, "doc": doc, "section": sec})
        out += describe_fields(type(default), prefix + f.name + ".") if sec else []
    return out


_DOCS: Dict[Tuple[str, str], Tuple[str, str]] = {}


# Keys of config.json files written before the algorithm got its own section.
RENAMED = {"distributed.algorithm": "algorithm.name", "distributed.vtrace_rho_clip": "vtrace.rho_clip",
           "distributed.vtrace_c_clip": "vtrace.c_clip"}


def from_dict(d: Dict[str, Any]) -> Config:
    """Rebuild a config written by `to_dict` (config.json), also one from an older srljax."""
    if not isinstance(d, dict):
        raise UserError(f"a config must be a JSON object of config sections, got {json.dumps(d)[:40]}")
    flat = {}

    def walk(prefix, obj):
        for k, v in obj.items():
            key = prefix + k
            if isinstance(v, dict) and key not in ("env.kwargs",) and not key.endswith("kwargs"):
                walk(key + ".", v)
            else:
                flat[key] = v
    walk("", d)
    return override(Config(), {RENAMED.get(k, k): v for k, v in flat.items()})
