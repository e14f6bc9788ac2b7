"""Full disk and file size limits: a checkpoint, metrics row, summary or TensorBoard write that fails
(EFBIG under RLIMIT_FSIZE, ENOSPC) raises a `WriteError` naming the file and the cause, leaves no
temp file and no half line or record, and keeps every earlier checkpoint loadable. A run ends with
that one line and exit code 1 (under mpirun: rank 0, trainer 0, names it, and every rank ends), and
--resume continues from the last good checkpoint to the end.

The limit is real (`resource.setrlimit`): in this process around one write, in the runs through
tests/disk_full_child.py, which drops it after a chosen metrics row, before the checkpoint that follows.
"""
import contextlib
import errno
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from srljax import checkpoint
from srljax.checkpoint import Checkpointer
from srljax.errors import WriteError
from srljax.runlog import RunLogger, plot_learning_curve, read_metrics, write_json

ROOT = Path(__file__).resolve().parent.parent
CHILD = str(ROOT / "tests" / "disk_full_child.py")
TRAIN = str(ROOT / "scripts" / "train.py")
TINY = ["--config", "cartpole", "--set", "env.num_envs=4", "--set", "rollout.rollout_len=16", "--set", "ppo.minibatches=2",
        "--set", "ppo.epochs=1", "--set", "total_env_steps=384", "--set", "log_every_env_steps=128",
        "--set", "checkpoint_every_logs=1", "--quiet"]
MPI_SMALL = ["--config", "gym_cartpole", "--quiet", "--set", "distributed.stop_at_return=null",
             "--set", "env.num_envs=16", "--set", "rollout.rollout_len=16", "--set", "total_env_steps=1500",
             "--set", "checkpoint_every_logs=1", "--set", "distributed.log_interval_s=0.3"]
EFBIG = "[Errno 27] File too large"


@contextlib.contextmanager
def file_size_limit(nbytes: int):
    """This process's writes past `nbytes` fail with EFBIG (SIGXFSZ ignored) until the block ends."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


def _tree(step: int):
    return {"w": np.arange(20_000, dtype=np.float32) + step, "step": np.int32(step)}


def _names(directory: Path):
    return sorted(p.name for p in directory.iterdir())


def test_checkpoint_save_past_the_file_size_limit_keeps_the_earlier_checkpoints(tmp_path):
    ckpt = Checkpointer(tmp_path, keep=2)
    for step in (1, 2):
        ckpt.save(step, _tree(step))
    with file_size_limit(16_384):                      # the 80 kB file stops partway
        with pytest.raises(WriteError) as failed:
            ckpt.save(3, _tree(3))
    assert str(failed.value) == f"could not write {ckpt.dir / 'ckpt_0000000003.msgpack'}: {EFBIG}"
    assert _names(ckpt.dir) == ["ckpt_0000000001.msgpack", "ckpt_0000000002.msgpack"]     # no temp file
    state, header = ckpt.restore(ckpt.latest())
    assert header["step"] == 2 and np.array_equal(state["w"], _tree(2)["w"])
    ckpt.save(3, _tree(3))                              # room again: the next save goes through
    assert _names(ckpt.dir) == ["ckpt_0000000002.msgpack", "ckpt_0000000003.msgpack"]


def test_checkpoint_save_on_a_full_disk_removes_its_temp_file(tmp_path, monkeypatch):
    ckpt = Checkpointer(tmp_path, keep=3)
    ckpt.save(1, _tree(1))

    def full(fd):           # ENOSPC where delayed allocation reports it: at fsync, the bytes already written
        assert (ckpt.dir / "ckpt_0000000002.msgpack.tmp").stat().st_size > 80_000
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(checkpoint.os, "fsync", full)
    with pytest.raises(WriteError) as failed:
        ckpt.save(2, _tree(2))
    target = ckpt.dir / "ckpt_0000000002.msgpack"
    assert str(failed.value) == f"could not write {target}: [Errno 28] No space left on device"
    assert _names(ckpt.dir) == ["ckpt_0000000001.msgpack"]
    assert ckpt.restore(ckpt.latest())[1]["step"] == 1


def test_metrics_row_that_fails_midway_leaves_no_half_line_and_resume_reads_the_rest(tmp_path):
    logger = RunLogger(tmp_path, 1000, quiet=True)           # metrics.jsonl and a TensorBoard file
    for step in (100, 200):
        logger.log({"env_steps": step, "episode_return": step / 10})
    metrics = tmp_path / "metrics.jsonl"
    before = metrics.read_bytes()
    with file_size_limit(len(before) + 20):                 # 20 bytes of the row fit, the rest not
        with pytest.raises(WriteError) as failed:
            logger.log({"env_steps": 300, "episode_return": 30.0, "note": "x" * 200})
    assert str(failed.value) == f"could not write {metrics}: {EFBIG}"
    assert metrics.read_bytes() == before                    # cut back to its last whole row
    resumed = RunLogger(tmp_path, 1000, quiet=True, resume_at=200)
    assert [r["env_steps"] for r in resumed.history] == [100, 200]
    resumed.log({"env_steps": 300, "episode_return": 30.0})
    resumed.finish({"env_steps": 300})
    assert [r["env_steps"] for r in read_metrics(tmp_path)] == [100, 200, 300]


def test_tensorboard_event_that_fails_is_cut_back_and_the_file_stays_readable(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboardX.summary import scalar

    from srljax.tracking import EventFile
    events = EventFile(tmp_path)
    events.add([scalar("x", 1.0)], step=1)
    size = events.path.stat().st_size
    with file_size_limit(size + 20):
        with pytest.raises(WriteError) as failed:
            events.add([scalar(f"x{i}", 2.0) for i in range(10)], step=2)
    assert str(failed.value) == f"could not write {events.path}: {EFBIG}"
    assert events.path.stat().st_size == size
    events.add([scalar("x", 3.0)], step=3)
    events.close()
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("x")] == [(1, 1.0), (3, 3.0)]


def test_summary_and_plot_that_fail_leave_the_old_files_and_no_temp_file(tmp_path):
    summary = tmp_path / "summary.json"
    write_json(summary, {"env_steps": 1})
    with file_size_limit(8):
        with pytest.raises(WriteError, match=re.escape(f"could not write {summary}: {EFBIG}")):
            write_json(summary, {"env_steps": 2, "episode_return": 3.0})
        with pytest.raises(WriteError, match=re.escape(f"could not write {tmp_path / 'curve.png'}: {EFBIG}")):
            plot_learning_curve([{"env_steps": 1, "episode_return": 1.0}], tmp_path / "curve.png")
    assert json.loads(summary.read_text()) == {"env_steps": 1}
    assert _names(tmp_path) == ["summary.json"]


# -- whole runs ------------------------------------------------------------------------------------

def _failing_checkpoint(line_prefix: str, err: str) -> Path:
    """The checkpoint the one srljax line names (after `line_prefix`), checked for its cause."""
    lines = [line for line in err.splitlines() if line.startswith("srljax")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    found = re.fullmatch(re.escape(line_prefix) + r"could not write (\S+/checkpoints/ckpt_\d{10}\.msgpack): "
                         + re.escape(EFBIG), lines[0])
    assert found, err[-3000:]
    return Path(found.group(1))


def _intact(run: Path, failed: Path) -> dict:
    """The one checkpoint left is whole and loadable, the failed one and its temp file are gone; its header."""
    ckpt = Checkpointer(run)
    assert len(ckpt.list()) == 1 and ckpt.latest() < failed
    assert _names(ckpt.dir) == [ckpt.latest().name]
    state, header = ckpt.restore(ckpt.latest())
    assert state and header["meta"]["env_steps"] > 0
    return header


def test_fused_run_whose_later_checkpoint_fails_ends_in_one_line_and_resumes(tmp_path, subprocess_env):
    run = tmp_path / "run"
    env = {**subprocess_env, "SRLJAX_TEST_LIMIT_AFTER_LOG": "2"}
    out = subprocess.run([sys.executable, CHILD, *TINY, "--run-dir", str(run)], env=env, capture_output=True,
                         text=True, timeout=240)
    assert out.returncode == 1, out.stderr[-3000:]
    failed = _failing_checkpoint("srljax: error: ", out.stderr)
    assert out.stderr.strip().count("\n") == 0, out.stderr          # that line is all of stderr
    header = _intact(run, failed)
    assert header["meta"]["env_steps"] == 128
    assert [r["env_steps"] for r in read_metrics(run)] == [128, 256]
    assert not (run / "summary.json").exists()

    out = subprocess.run([sys.executable, TRAIN, "--run-dir", str(run), "--resume", "--quiet"], env=subprocess_env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from_env_steps"] == 128 and summary["env_steps"] == 384
    assert [r["env_steps"] for r in read_metrics(run)] == [128, 256, 384]


def _mpirun(args, env, timeout: float):
    proc = subprocess.Popen(["mpirun", "-n", "4", sys.executable, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError(f"mpirun {args} still running after {timeout} s:\n{proc.communicate()[1][-3000:]}")
    return proc.returncode, err


def test_mpirun_trainer_0_whose_checkpoint_fails_ends_every_rank_and_resumes(tmp_path, subprocess_env):
    run, mark = tmp_path / "run", tmp_path / "limit_dropped_at"
    env = {**subprocess_env, "SRLJAX_TEST_LIMIT_AFTER_LOG": "2", "SRLJAX_TEST_MARK": str(mark)}
    rc, err = _mpirun([CHILD, *MPI_SMALL, "--run-dir", run], env, timeout=180)
    ended = time.time()
    assert rc == 1, err[-3000:]
    failed = _failing_checkpoint("srljax: rank 0 (trainer 0) failed: ", err)
    # Besides that line only MPICH's own "Abort(1) on node 0 ..." line
    assert all(line.startswith(("srljax", "Abort(1)")) for line in err.splitlines() if line.strip()), err[-3000:]
    assert ended - float(mark.read_text()) < 10.0, "the job took too long to end after the failed write"
    header = _intact(run, failed)
    assert len(read_metrics(run)) == 2 and not (run / "summary.json").exists()

    rc, err = _mpirun([TRAIN, "--run-dir", run, "--resume", "--quiet"], subprocess_env, timeout=180)
    assert rc == 0, err[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed_from_env_steps"] == header["meta"]["env_steps"] and summary["env_steps"] >= 1500
    steps = [r["env_steps"] for r in read_metrics(run)]
    assert steps == sorted(set(steps)) and steps[-1] == summary["env_steps"]
