"""Tracking: TensorBoard event files beside metrics.jsonl in both modes (same scalars, step =
env_steps, the config as hyperparameters), no duplicate steps after --resume, opt-in W&B offline."""
import importlib.util
import json
from pathlib import Path

import pytest

from srljax import config as C
from srljax import presets
from srljax.run import run
from srljax.tracking import flat_config

TINY_FUSED = {"env.num_envs": 4, "rollout.rollout_len": 16, "ppo.minibatches": 2, "ppo.epochs": 1,
              "total_env_steps": 640, "log_every_env_steps": 128, "checkpoint_every_logs": 2}
TINY_DISTRIBUTED = {"total_env_steps": 4096, "distributed.stop_at_return": None, "distributed.log_interval_s": 0.01}


def events(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def metrics(run_dir: Path):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def series(acc, key):
    return [(e.step, e.value) for e in acc.Scalars(key)]


def expected(rows, key):
    return [(r["env_steps"], pytest.approx(r[key], rel=1e-6, abs=1e-6)) for r in rows
            if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]


def check_same_as_metrics(run_dir: Path):
    acc, rows = events(run_dir), metrics(run_dir)
    assert expected(rows, "episode_return"), "no episode_return in metrics.jsonl"
    assert series(acc, "episode_return") == expected(rows, "episode_return")
    numeric = {k for r in rows for k, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert numeric <= set(acc.Tags()["scalars"])
    for key in numeric:
        assert series(acc, key) == expected(rows, key), key
    return acc


def hparams(acc):
    from tensorboard.plugins.hparams import plugin_data_pb2
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    out = {}
    for k, v in info.hparams.items():
        kind = v.WhichOneof("kind")
        out[k] = getattr(v, kind)
    return out


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("tb") / "fused"
    cfg = C.override(presets.get("cartpole"), TINY_FUSED)
    run(cfg, run_dir=str(path))
    return path, cfg


def test_fused_run_writes_the_metrics_and_config_to_tensorboard(fused_run):
    path, cfg = fused_run
    assert len(list(path.glob("events.out.tfevents.*"))) == 1
    acc = check_same_as_metrics(path)
    assert [s for s, _ in series(acc, "episode_return")] == [128, 256, 384, 512, 640]
    hp = hparams(acc)
    flat = flat_config(cfg)
    assert set(hp) == set(flat) and "ppo.lr" in hp and "env.kwargs" in hp
    assert hp["ppo.lr"] == pytest.approx(cfg.ppo.lr) and hp["env.id"] == cfg.env.id
    assert hp["ppo.anneal_lr"] is cfg.ppo.anneal_lr and hp["network.hidden"] == json.dumps(list(cfg.network.hidden))


def test_resume_redoes_rows_without_duplicate_steps(fused_run, tmp_path):
    """Drop the last checkpoint (as if the run died before it): the resume starts at 512 and redoes
    the 640 row; TensorBoard then shows every step once, with metrics.jsonl's values."""
    import shutil
    src, cfg = fused_run
    path = tmp_path / "resumed"
    shutil.copytree(src, path)
    ckpts = sorted((path / "checkpoints").glob("ckpt_*"))
    ckpts[-1].unlink()
    run(C.override(cfg, {"total_env_steps": 896}), run_dir=str(path), resume=True)
    rows = metrics(path)
    assert [r["env_steps"] for r in rows] == [128, 256, 384, 512, 640, 768, 896]
    assert len(list(path.glob("events.out.tfevents.*"))) == 1
    acc = check_same_as_metrics(path)
    assert [s for s, _ in series(acc, "env_steps")] == [128, 256, 384, 512, 640, 768, 896]
    assert hparams(acc)["total_env_steps"] == 896


def test_distributed_in_process_run_writes_tensorboard(tmp_path):
    path = tmp_path / "dist"
    cfg = C.override(presets.get("gym_cartpole"), TINY_DISTRIBUTED)
    run(cfg, run_dir=str(path))
    acc = check_same_as_metrics(path)
    assert hparams(acc)["mode"] == "distributed"


def test_tensorboard_can_be_turned_off(tmp_path):
    cfg = C.override(presets.get("cartpole"), {**TINY_FUSED, "total_env_steps": 128, "logging.tensorboard": False})
    run(cfg, run_dir=str(tmp_path / "off"))
    assert (tmp_path / "off" / "metrics.jsonl").is_file()
    assert not list((tmp_path / "off").glob("events.out.tfevents.*"))


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed (srljax[wandb])")
def test_wandb_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = C.override(presets.get("cartpole"), {**TINY_FUSED, "total_env_steps": 256, "logging.wandb": True,
                                               "logging.wandb_project": "srljax-test"})
    run(cfg, run_dir=str(tmp_path / "w"))
    run_id = (tmp_path / "w" / "wandb_id").read_text().strip()
    offline = list((tmp_path / "w" / "wandb").glob(f"offline-run-*-{run_id}"))
    assert offline and list(offline[0].glob("*.wandb")), list((tmp_path / "w").rglob("*"))
    assert list((tmp_path / "w").glob("events.out.tfevents.*"))     # TensorBoard as well
