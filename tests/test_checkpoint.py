"""srljax.checkpoint: atomic files, the last N kept, clear errors for corrupt or mismatched checkpoints."""
import numpy as np
import pytest

from srljax.checkpoint import CheckpointError, Checkpointer, into

TREE = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": np.int32(7)}


def test_keeps_the_last_n_and_round_trips(tmp_path):
    ck = Checkpointer(tmp_path, keep=2)
    for step in (1, 5, 12):
        ck.save(step, TREE, meta={"env_steps": step * 10})
    assert [p.name for p in ck.list()] == ["ckpt_0000000005.msgpack", "ckpt_0000000012.msgpack"]
    state, header = ck.restore(ck.latest())
    assert header["step"] == 12 and header["meta"] == {"env_steps": 120}
    back = into(TREE, state)
    np.testing.assert_array_equal(back["w"], TREE["w"])
    assert int(back["step"]) == 7


def test_a_half_written_file_is_not_a_checkpoint(tmp_path):
    ck = Checkpointer(tmp_path)
    ck.save(1, TREE)
    (ck.dir / "ckpt_0000000002.msgpack.tmp").write_bytes(b"\x00" * 5)     # a crash mid-write leaves only this
    assert ck.latest().name == "ckpt_0000000001.msgpack"


@pytest.mark.parametrize("damage,match", [(lambda b: b[: len(b) - 10], "truncated"),
                                          (lambda b: b[:5], "corrupt"),
                                          (lambda b: b"\x10" + b[1:], "corrupt")])
def test_damaged_files_raise_checkpoint_error(tmp_path, damage, match):
    ck = Checkpointer(tmp_path)
    path = ck.save(3, TREE)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CheckpointError, match=match):
        ck.restore(path)


def test_a_checkpoint_of_another_shape_is_reported(tmp_path):
    ck = Checkpointer(tmp_path)
    state, _ = ck.restore(ck.save(1, TREE))
    with pytest.raises(CheckpointError, match=r"shape \(2, 3\) where this config has \(4, 3\)"):
        into({"w": np.zeros((4, 3), np.float32), "step": np.int32(0)}, state)
    with pytest.raises(CheckpointError, match="does not match this config"):
        into({"other": np.zeros(3, np.float32)}, state)
