"""Recurrent policies in fused mode (`network.core`): an LSTM remembers what a feedforward policy
cannot (MemoryChain), a checkpointed run resumes with its carries exactly, a GRU trains, and
`srljax-evaluate` plays a recurrent checkpoint."""
import jax
import numpy as np
import pytest

import srljax
from srljax import config, presets
from srljax.checkpoint import Checkpointer
from srljax.dataflow.fused.rollout import FusedTrainer

MEMORY = {"env.kwargs": {"memory_length": 5}, "total_env_steps": 40_960, "log_every_env_steps": 10_240}


@pytest.mark.parametrize("core", ["lstm", "feedforward"])
def test_an_lstm_remembers_the_cue_a_feedforward_policy_cannot(core, tmp_path):
    """MemoryChain: +1 for naming at the end the bit shown at the start, -1 otherwise. The LSTM's
    checkpoint then plays through `srljax-evaluate`'s path, carrying its state."""
    from srljax.playback import play_checkpoint
    run = tmp_path / "run"
    result = srljax.train("memory_chain", overrides={**MEMORY, "network.core": core}, run_dir=str(run))
    last = result.summary["episode_return"]
    if core == "feedforward":
        assert abs(last) < 0.4, result.summary           # a guess: 0 on average
        return
    assert last > 0.8, result.summary
    out = play_checkpoint(result.config, Checkpointer(run).latest(), episodes=16, seed=0, video=None)
    assert out["episodes"] == 16 and out["return_mean"] > 0.5, out


def _params(fs):
    return [np.asarray(x) for x in jax.tree.leaves(fs.learner.params)]


@pytest.mark.parametrize("preset, core, carries", [("memory_chain", "gru", 4), ("mpe_simple_spread", "lstm", 12)],
                         ids=["gru", "multi-agent-lstm"])
def test_a_recurrent_run_resumes_from_a_checkpoint_exactly(preset, core, carries, tmp_path):
    """A GRU on MemoryChain, an LSTM on JaxMARL's simple_spread (a carry per env and agent)."""
    cfg = config.override(presets.get(preset), {"env.num_envs": 4, "rollout.rollout_len": 16, "ppo.minibatches": 4,
                                                "rollout.chunk_len": 8, "network.core": core,
                                                "network.hidden": [16, 16]})
    trainer = FusedTrainer(cfg)
    straight, _ = trainer.chunk(trainer.init(3), 4)
    half, _ = trainer.chunk(trainer.init(3), 2)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(2, half, meta={"env_steps": 2 * 64})
    state, _ = ckpt.restore(ckpt.latest())
    resumed, _ = trainer.chunk(trainer.restore(state, seed=3), 2)
    carry = np.asarray(half.memory[0])
    width = 16 if core == "gru" else 32                                # GRU h; LSTM (c, h)
    assert carry.shape == (1, carries, width) and np.abs(carry).max() > 0
    for a, b in zip(_params(straight), _params(resumed)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.asarray(straight.memory[0]), np.asarray(resumed.memory[0]))

