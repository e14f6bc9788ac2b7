"""The command line's help and --set: every config field listed with its type, default and
docstring (read from srljax/config.py's source); values read for the field's type."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from srljax import cli
from srljax import config as C
from srljax.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_describe_fields_covers_every_field_with_its_docstring():
    fields = C.describe_fields()
    leaves = {f["key"]: f for f in fields if not f["section"]}
    assert set(leaves) == set(C.field_paths())
    sections = {f["key"] for f in fields if f["section"]}
    assert {"env", "ppo", "distributed", "logging"} <= sections
    cfg = C.Config()
    for key, f in leaves.items():
        assert f["doc"] and f["type"], key
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        assert f["default"] == value, key
    assert leaves["ppo.lr"]["type"] == "float" and leaves["ppo.lr"]["doc"] == "Adam learning rate."
    assert leaves["distributed.stop_at_return"]["type"] == "Optional[float]"
    assert leaves["network.hidden"]["type"] == "Tuple[int, ...]"
    # a docstring over several lines is one line here
    assert "\n" not in leaves["distributed.random_opponents"]["doc"]
    assert leaves["distributed.random_opponents"]["doc"].startswith("Two-team games: the fraction of episodes")
    for f in fields:
        if f["section"]:
            section = cfg
            for part in f["key"].split("."):
                section = getattr(section, part)
            assert f["default"] is None and dataclasses.is_dataclass(section) and f["doc"], f["key"]


@pytest.mark.parametrize("command", [["scripts/train.py"], ["-m", "srljax"]])
def test_help_lists_every_field_with_type_default_and_docstring(command, subprocess_env):
    out = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, env=subprocess_env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = _flat(out.stdout)
    for f in C.describe_fields():
        if f["section"]:
            assert f"{f['key']}.*: {f['doc']}" in text, f["key"]
            continue
        assert f"{f['key']} ({f['type']}, default " in text, f["key"]
        assert f["doc"] in text, f["key"]
    assert "ppo.anneal_lr (bool, default true)" in text and 'env.id (str, default "gymnax/CartPole-v1")' in text


def _resolve(*sets):
    return cli.resolve_config(cli.parse_args(["--config", "cartpole", *[a for s in sets for a in ("--set", s)]]))


@pytest.mark.parametrize("raw,want", [("False", False), ("false", False), ("0", False), ("True", True),
                                      ("true", True), ("1", True)])
def test_booleans_read_words_and_digits(raw, want):
    assert _resolve(f"ppo.anneal_lr={raw}").ppo.anneal_lr is want


def test_strings_need_no_quotes_and_other_values_are_json():
    cfg = _resolve("description=2024", "name=my run", "ppo.lr=1e-3", "network.hidden=[32,16]",
                   'env.kwargs={"max_steps_in_episode": 200}', "total_env_steps=2e5")
    assert cfg.description == "2024" and cfg.name == "my run"
    assert cfg.ppo.lr == 1e-3 and cfg.network.hidden == (32, 16) and cfg.total_env_steps == 200000
    assert cfg.env.kwargs == {"max_steps_in_episode": 200}
    assert _resolve('description="quoted"').description == "quoted"     # a JSON string still reads
    assert _resolve("description=").description == ""
    gym = cli.resolve_config(cli.parse_args(["--config", "gym_cartpole", "--set", "distributed.stop_at_return=null"]))
    assert gym.distributed.stop_at_return is None
    assert C.parse_set(["ppo.anneal_lr=False"]) == {"ppo.anneal_lr": "False"}
    assert C.override(C.Config(), {"ppo.anneal_lr": 0}).ppo.anneal_lr is False


@pytest.mark.parametrize("item,message", [
    ("ppo.anneal_lr=maybe", "--set ppo.anneal_lr: expected bool, got 'maybe'"),
    ("ppo.anneal_lr=2", "--set ppo.anneal_lr: expected bool, got 2"),
    ("ppo.lr=fast", "--set ppo.lr: expected float, got 'fast'"),
    ("network.hidden=64", "--set network.hidden: expected"),
    ("ppo.nosuch=1", "unknown config key 'ppo.nosuch'"),
])
def test_bad_values_are_user_errors(item, message):
    with pytest.raises(UserError) as e:
        _resolve(item)
    assert message in str(e.value)


def test_bad_value_is_one_line_and_exit_2(subprocess_env):
    out = subprocess.run([sys.executable, "scripts/train.py", "--set", "ppo.anneal_lr=maybe"], cwd=ROOT,
                         env=subprocess_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr == "srljax: error: --set ppo.anneal_lr: expected bool, got 'maybe'\n"


def _old_keys(cfg) -> dict:
    """`cfg` as a config.json written before the `rollout` section: its fields inside `ppo`."""
    d = C.to_dict(cfg)
    d["ppo"].update(d.pop("rollout"))
    return d


@pytest.mark.parametrize("preset", ["hns_quadrant", "gym_cartpole_dqn", "pendulum_sac"])
def test_a_config_json_with_the_old_ppo_rollout_keys_reads_the_same(preset, tmp_path):
    from srljax import presets
    cfg = presets.get(preset)
    old = _old_keys(cfg)
    assert {"rollout_len", "chunk_len", "max_nonfinite_updates"} <= set(old["ppo"]) and "rollout" not in old
    assert C.from_dict(old) == cfg
    (tmp_path / "config.json").write_text(__import__("json").dumps(old))     # as --resume reads it
    resumed = cli.resolve_config(cli.parse_args(["--run-dir", str(tmp_path), "--resume"]))
    assert resumed == cfg and resumed.rollout.rollout_len == old["ppo"]["rollout_len"]


@pytest.mark.parametrize("item, new", [("ppo.rollout_len=64", "rollout.rollout_len=64"),
                                       ("ppo.chunk_len=8", "rollout.chunk_len=8"),
                                       ("ppo.max_nonfinite_updates=3", "rollout.max_nonfinite_updates=3")])
def test_an_old_key_on_the_command_line_is_one_line_naming_the_new_one(item, new, subprocess_env):
    """--set with a key of RENAMED is refused (a command line says what it sets), naming the key to use."""
    out = subprocess.run([sys.executable, "scripts/train.py", "--set", item], cwd=ROOT, env=subprocess_env,
                         capture_output=True, text=True, timeout=60)
    old = item.split("=")[0]
    assert out.returncode == 2
    assert out.stderr == f"srljax: error: config key '{old}' is now '{new.split('=')[0]}' (set {new})\n"
    assert _resolve(new) == C.override(_resolve(), {new.split("=")[0]: int(new.split("=")[1])})
