"""Replay in distributed mode: the buffer worker's store (n-step transitions, wrap-around, the sum
tree and importance weights), the replay-ratio controller, Ape-X epsilons, in-process DQN and SAC
runs and bad input."""
import sys

import numpy as np
import pytest

from srljax.dataflow.replay.store import BufferSettings, RatioController, ReplayStore, SumTree, n_step_transitions
from srljax.learners.replay_spec import apex_epsilon
from helpers import ROOT, mpirun, subprocess_env


def settings(**kw):
    base = dict(capacity=10, batch_size=4, batches_per_message=1, n_step=1, gamma=0.9, prioritized=True,
                alpha=1.0, beta=0.5, learning_starts=0, ratio=1.0)
    return BufferSettings(**{**base, **kw})


def rollout(T, B, start=0):
    obs = (start + np.arange(T * B, dtype=np.float32)).reshape(T, B, 1)
    zeros = np.zeros((T, B), np.float32)
    return {"obs": obs, "action": np.zeros((T, B), np.int32), "reward": np.ones((T, B), np.float32),
            "terminated": zeros.copy(), "truncated": zeros.copy(), "final_obs": obs + 100}


def test_sum_tree_finds_the_leaf_holding_each_mass_point():
    tree = SumTree(5)
    tree.set(np.arange(5), np.array([1.0, 2.0, 3.0, 4.0, 0.0]))
    assert tree.total == 10.0
    assert tree.find(np.array([0.0, 0.99, 1.0, 2.99, 3.0, 5.99, 6.0, 9.99])).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_prioritized_sampling_is_proportional_with_correct_importance_weights():
    store = ReplayStore(settings(capacity=8, alpha=0.7, beta=0.4), (1,), (), np.int32)
    store.add(rollout(4, 2))
    priority = np.array([0.5, 1.0, 2.0, 4.0, 0.1, 3.0, 1.5, 6.0])
    assert store.set_priorities(np.arange(8), priority) == 8
    p_alpha = priority ** 0.7
    expected = p_alpha / p_alpha.sum()
    rng = np.random.default_rng(0)
    counts = np.zeros(8)
    n = 100_000
    for _ in range(n // 500):
        ids, batch, weight = store.sample(500, rng)
        counts += np.bincount(ids, minlength=8)
        # weight: (N P(i))^-beta over the batch's largest
        w = (8 * expected[ids]) ** -0.4
        np.testing.assert_allclose(weight, w / w.max(), rtol=1e-5)
        np.testing.assert_array_equal(batch["obs"][:, 0], ids)     # transition i holds observation i
    freq = counts / n
    assert np.all(np.abs(freq - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 1e-3), (freq, expected)


def test_uniform_sampling_covers_the_filled_slots_with_weight_one():
    store = ReplayStore(settings(capacity=16, prioritized=False), (1,), (), np.int32)
    store.add(rollout(3, 2))                        # 6 of 16 slots filled
    ids, batch, weight = store.sample(6000, np.random.default_rng(1))
    assert set(ids.tolist()) == set(range(6)) and np.all(weight == 1.0)
    assert np.all(np.abs(np.bincount(ids) / 6000 - 1 / 6) < 0.03)


def test_the_buffer_wraps_around_and_ignores_priorities_of_overwritten_transitions():
    store = ReplayStore(settings(capacity=10), (1,), (), np.int32)
    for k in range(3):                               # 3 x 4 transitions into 10 slots
        store.add(rollout(2, 2, start=4 * k))
    assert store.added == 12 and store.size == 10
    held = sorted(store.data["obs"][:, 0].tolist())
    assert held == list(range(2, 12))                # the two oldest were overwritten
    ids, batch, _ = store.sample(200, np.random.default_rng(2))
    assert ids.min() >= 2 and ids.max() <= 11
    np.testing.assert_array_equal(batch["obs"][:, 0], ids)
    assert store.set_priorities(np.array([0, 1, 5]), np.array([9.0, 9.0, 9.0])) == 1   # ids 0 and 1 are gone
    assert store.stale_priorities == 2 and store.priority_updates == 1
    assert store.tree.get(np.array([5]))[0] == pytest.approx(9.0)


def test_n_step_transitions_cut_at_episode_ends_and_bootstrap_after_truncation():
    data = rollout(5, 2)
    data["terminated"][1, 0] = 1          # env 0 terminates at step 1
    data["truncated"][3, 1] = 1           # env 1 is truncated at step 3
    tr = n_step_transitions(data, n=2, gamma=0.9)
    ret, disc, nxt = (tr[k].reshape(5, 2) for k in ("reward", "discount", "next_obs"))
    np.testing.assert_allclose(ret, [[1.9, 1.9], [1.0, 1.9], [1.9, 1.9], [1.9, 1.0], [1.0, 1.0]])
    np.testing.assert_allclose(disc, [[0.0, 0.81], [0.0, 0.81], [0.81, 0.81], [0.81, 0.9], [0.9, 0.9]])
    final = data["final_obs"][..., 0]
    # the step each window bootstraps from: the last one summed (its final observation)
    last = np.array([[1, 1], [1, 2], [3, 3], [4, 3], [4, 4]])
    np.testing.assert_array_equal(nxt, final[last, np.arange(2)[None]])


def test_the_ratio_controller_holds_the_ratio_both_ways():
    ctl = RatioController(ratio=2.0, learning_starts=100, slack=64)
    assert not ctl.may_serve(16) and ctl.may_take(50)
    ctl.took(100)                        # learning starts: nothing owed yet
    assert not ctl.may_serve(16)
    ctl.took(16)                         # 32 samples owed
    assert ctl.may_serve(16)
    ctl.served_batch(16)
    ctl.served_batch(16)
    assert not ctl.may_serve(16)         # the trainer waits for env steps
    assert ctl.may_take(32) and not ctl.may_take(40)   # owed after 40 more steps: 80 > slack 64: actors wait
    # a fast trainer and a fast actor side, simulated: the achieved ratio stays at the target
    rng = np.random.default_rng(0)
    ctl = RatioController(ratio=8.0, learning_starts=256, slack=2 * 8 * 64)
    for _ in range(20_000):
        if rng.random() < 0.5 and ctl.may_take(64):
            ctl.took(64)
        if rng.random() < 0.9 and ctl.may_serve(128):
            ctl.served_batch(128)
    assert ctl.achieved() == pytest.approx(8.0, rel=0.02)


def test_apex_epsilons_fall_from_the_base_rate():
    assert apex_epsilon(0.4, 7.0, 0, 8) == pytest.approx(0.4)
    assert apex_epsilon(0.4, 7.0, 7, 8) == pytest.approx(0.4 ** 8)
    assert apex_epsilon(0.4, 7.0, 0, 1) == pytest.approx(0.4)


def test_distributed_dqn_in_one_process_updates_priorities_at_the_replay_ratio():
    from srljax import config as C
    from srljax import get_config, run
    import replay_loss      # tests/dataflow is on sys.path (pytest's rootdir-relative imports)

    cfg = get_config("gym_cartpole_dqn", C.parse_set([
        "total_env_steps=3000", "dqn.learning_starts=500", "dqn.replay_ratio=4", "dqn.gradient_steps=2",
        "distributed.actors=1", "distributed.stop_at_return=null", "logging.tensorboard=false",
        "algorithm.loss=replay_loss:dqn_loss"]))
    summary = run(cfg).summary
    assert summary["in_process"] and summary["buffers"] == 1 and summary["actors"] == 1
    assert summary["env_steps"] >= 3000 and summary["gradient_steps"] > 0
    assert summary["replay_ratio_target"] == 4.0
    assert summary["replay_ratio"] == pytest.approx(4.0, rel=0.15), summary
    assert summary["priority_updates_applied"] > 0 and summary["priorities_sent"] >= summary["priority_updates_applied"]
    assert replay_loss.TRACED, "the named loss was not used"


def test_distributed_sac_in_one_process_acts_in_the_box_at_the_replay_ratio():
    from srljax import config as C
    from srljax import get_config, run
    import replay_loss

    cfg = get_config("gym_pendulum_sac", C.parse_set([
        "total_env_steps=1200", "sac.learning_starts=400", "sac.replay_ratio=8", "sac.batch_size=32",
        "sac.gradient_steps=2", "network.hidden=[16]", "distributed.actors=1", "distributed.stop_at_return=null",
        "logging.tensorboard=false", "algorithm.loss=replay_loss:sac_loss"]))
    summary = run(cfg).summary
    assert summary["in_process"] and summary["algorithm"] == "sac" and summary["buffers"] == 1
    assert summary["env_steps"] >= 1200 and summary["gradient_steps"] > 0 and not summary["prioritized"]
    assert summary["replay_ratio_target"] == 8.0
    assert summary["replay_ratio"] == pytest.approx(8.0, rel=0.15), summary
    assert np.isfinite(summary["episode_return"]) and replay_loss.SAC_TRACED, "the named loss was not used"


def test_two_replay_trainers_average_gradients_and_stay_identical(tmp_path):
    """mpirun -n 6: 2 trainers, each with its own prioritized buffer and actor; gradients averaged
    across the trainers in every gradient step (identical parameters at the end), the replay ratio
    held, the summary's replay figures summed over both trainers' buffers."""
    import json

    run_dir = tmp_path / "r"
    sets = ["total_env_steps=3000", "rollout.rollout_len=8", "dqn.learning_starts=400", "dqn.replay_ratio=4", "dqn.gradient_steps=2",
            "dqn.batch_size=32", "network.hidden=[32]", "distributed.trainers=2", "distributed.buffers=2",
            "distributed.actors=2", "distributed.actor_nice=0", "distributed.stop_at_return=null",
            "logging.tensorboard=false"]
    args = [ROOT / "scripts" / "train.py", "--config", "gym_cartpole_dqn", "--run-dir", run_dir]
    code, out, err, _ = mpirun(6, args + [a for s in sets for a in ("--set", s)], timeout=240)
    assert code == 0, err[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    digests = summary["trainer_params_digests"]
    assert summary["trainers"] == 2 and len(digests) == 2 and digests[0] == digests[1], summary
    assert summary["buffers"] == 2 and summary["env_steps"] >= 3000 and summary["gradient_steps"] > 0
    # (below 4 by what the actors ran ahead within the buffers' slack when the budget was reached)
    assert summary["replay_ratio"] == pytest.approx(4.0, rel=0.2), summary
    assert summary["priority_updates_applied"] > 0, summary
    # both trainers' buffers are counted: each trained on its own samples, so the sum is twice
    # trainer 0's share (its updates x batches per message x batch)
    assert summary["samples_trained"] == 2 * summary["updates"] * 2 * 32, summary


@pytest.mark.parametrize("sets, words", [
    (["distributed.buffers=0"], "dqn learns from replay: distributed mode needs distributed.buffers >= 1 and a "
                                "multiple of distributed.trainers"),
    (["distributed.buffers=3"], "rank layout does not fit -n 4"),
])
def test_a_replay_layout_that_does_not_fit_the_ranks_is_one_line(sets, words, tmp_path):
    run_dir = tmp_path / "r"
    args = [ROOT / "scripts" / "train.py", "--config", "gym_cartpole_dqn", "--run-dir", run_dir]
    code, out, err, _ = mpirun(4, args + [a for s in sets for a in ("--set", s)], timeout=120)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and words in lines[0], err[-3000:]
    assert not run_dir.exists()


def test_distributed_sac_on_discrete_actions_is_one_line_before_any_write(tmp_path):
    run_dir = tmp_path / "r"
    args = [ROOT / "scripts" / "train.py", "--config", "gym_pendulum_sac", "--run-dir", run_dir,
            "--set", "env.id=gym/CartPole-v1"]
    code, out, err, _ = mpirun(4, args, timeout=120)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err[-3000:]
    assert "sac needs a continuous (Box, one axis) action space; env 'gym/CartPole-v1' has Discrete" in lines[0]
    assert not run_dir.exists()


@pytest.mark.parametrize("sets, words", [
    (["dqn.replay_ratio=0"], "dqn.replay_ratio must be > 0"),
    (["dqn.batch_size=512", "dqn.buffer_size=256"], "dqn.batch_size (512) must be <= dqn.buffer_size (256)"),
])
def test_impossible_replay_settings_are_one_line(sets, words, tmp_path):
    import subprocess

    run_dir = tmp_path / "r"
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), "--config", "gym_cartpole_dqn",
                          "--run-dir", str(run_dir)] + [a for s in sets for a in ("--set", s)],
                         env=subprocess_env(), capture_output=True, text=True, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(lines) == 1 and words in lines[0], out.stderr[-3000:]
    assert not run_dir.exists()


def test_a_loss_named_by_import_path_is_resolved_or_refused_in_one_line():
    from srljax import config as C
    from srljax.errors import UserError
    from srljax.run import named_loss

    cfg = C.override(C.Config(), {"algorithm.loss": "replay_loss:dqn_loss"})
    import replay_loss
    assert named_loss(cfg, None) is replay_loss.dqn_loss
    assert named_loss(C.Config(), None) is None
    for path, words in (("replay_loss:nosuch", "cannot be imported"), ("nosuchmodule:f", "cannot be imported"),
                        ("no_colon", "must be an import path module:function")):
        with pytest.raises(UserError, match=words):
            named_loss(C.override(C.Config(), {"algorithm.loss": path}), None)
    with pytest.raises(UserError, match="give one"):
        named_loss(cfg, replay_loss.dqn_loss)


def test_each_actor_of_a_replay_plan_explores_at_its_apex_epsilon():
    from srljax import config as C
    from srljax import get_config
    from srljax.dataflow.plan import Plan

    cfg = get_config("gym_cartpole_dqn", C.parse_set(["distributed.actors=3"]))
    plan = Plan(cfg, 1, local=True)
    assert len(plan.layout.actors) == 3 and len(plan.layout.buffers) == 1
    assert [plan.actor_epsilon(i) for i in range(3)] == pytest.approx([0.05, 0.05 ** 4.5, 0.05 ** 8])
    assert plan.replay.ratio == 16.0 and plan.replay.prioritized
    ppo = Plan(get_config("gym_cartpole"), 1, local=True)
    assert ppo.replay is None and ppo.actor_epsilon(0) == 0.0 and not ppo.layout.buffers
