"""A user's algorithm brings its own config section (issue 23 item 4): a registry entry names the
sections it reads (`AlgorithmSpec.sections`), the section lives in a subclass of `Config` written
here, and overrides, validation (through the entry), field descriptions, config.json round trips
and training in both modes (distributed: in one process) take it as they take the built-in ones.
No srljax file is edited. (Under mpirun every rank would have to import this module before reading
its config: scripts/train.py imports no user module, so that stays out of reach.)"""
import dataclasses
import json

import pytest

import srljax
from srljax import config as C
from srljax import presets
from srljax.errors import UserError
from srljax.learners import registry


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    """The `toy` section: the toy policy gradient's own settings."""

    ent_coef: float = 0.0
    """Weight of the entropy bonus (replaces ppo.ent_coef)."""

    def validate(self, cfg) -> None:
        if self.ent_coef < 0:
            raise UserError(f"toy.ent_coef must be >= 0, got {self.ent_coef}")


@dataclasses.dataclass(frozen=True)
class ToyRunConfig(C.Config):
    """`Config` with the toy algorithm's section."""

    toy: ToyConfig = dataclasses.field(default_factory=ToyConfig)
    """The toy algorithm's settings (algorithm.name=toy_pg)."""


BUILT = []


def build(cfg, obs_space, action_space, **build_args):
    """PPO's learner with the entropy weight read from the `toy` section."""
    from srljax.learners import ppo
    BUILT.append(cfg.toy.ent_coef)
    cfg = dataclasses.replace(cfg, ppo=dataclasses.replace(cfg.ppo, ent_coef=cfg.toy.ent_coef))
    return ppo.build(cfg, obs_space, action_space, **build_args)


@pytest.fixture(scope="module")
def toy():
    registry.register(registry.AlgorithmSpec("toy_pg", "rollout", f"{__name__}:build", "a test's policy gradient",
                                             sections=("toy", "ppo")))
    yield
    registry.ALGORITHMS.pop("toy_pg")
    C.ALGORITHM_SECTIONS.pop("toy_pg")


def toy_config(preset: str, **values) -> ToyRunConfig:
    base = presets.get(preset)
    cfg = ToyRunConfig(**{f.name: getattr(base, f.name) for f in dataclasses.fields(C.Config)})
    return C.override(cfg, {"algorithm.name": "toy_pg", **values})


def test_a_user_section_is_set_validated_described_and_round_tripped(toy, tmp_path):
    cfg = toy_config("cartpole", **{"toy.ent_coef": 0.02})
    assert cfg.toy.ent_coef == 0.02 and C.validate(cfg) is cfg
    with pytest.raises(UserError, match=r"toy.ent_coef must be >= 0, got -1.0"):
        C.validate(C.override(cfg, {"toy.ent_coef": -1}))
    with pytest.raises(UserError, match=r"rollout.rollout_len \(6\) must divide into ppo.minibatches"):
        C.validate(C.override(cfg, {"rollout.rollout_len": 6}))              # its other section, ppo
    with pytest.raises(UserError, match=r"algorithm 'toy_pg' reads config section 'toy', which Config lacks"):
        C.validate(C.override(presets.get("cartpole"), {"algorithm.name": "toy_pg"}))
    rows = {r["key"]: r for r in C.describe_fields(ToyRunConfig)}
    assert rows["toy.ent_coef"]["doc"] == "Weight of the entropy bonus (replaces ppo.ent_coef)."
    assert rows["ppo.lr"]["doc"] == "Adam learning rate." and rows["toy"]["section"]
    saved = json.loads(json.dumps(C.to_dict(cfg)))
    assert C.from_dict(saved, ToyRunConfig) == cfg
    with pytest.raises(UserError, match="unknown config key 'toy.ent_coef'"):
        C.from_dict(saved)                                                 # plain Config: one line


@pytest.mark.parametrize("preset, values", [
    ("cartpole", {"env.num_envs": 4, "rollout.rollout_len": 16, "ppo.minibatches": 2, "ppo.epochs": 1,
                  "total_env_steps": 640, "log_every_env_steps": 128}),
    ("gym_cartpole", {"total_env_steps": 2048, "distributed.stop_at_return": None,
                      "distributed.log_interval_s": 0.01}),
])
def test_a_user_algorithm_with_its_own_section_trains_in_both_modes(toy, preset, values, tmp_path):
    BUILT.clear()
    cfg = toy_config(preset, **{**values, "toy.ent_coef": 0.03})
    result = srljax.train(cfg, run_dir=str(tmp_path / "run"))
    assert BUILT and set(BUILT) == {0.03} and result.summary["env_steps"] >= values["total_env_steps"]
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["toy"] == {"ent_coef": 0.03} and saved["algorithm"]["name"] == "toy_pg"
