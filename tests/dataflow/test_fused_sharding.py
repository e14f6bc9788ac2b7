"""Data parallelism: 4 forced host devices give the same update as 1 device, and stay in sync."""
from helpers import on_four_devices as _on_four_devices


def test_four_devices_equal_one_device_and_stay_identical(subprocess_env):
    res = _on_four_devices("sharded_update_check.py", subprocess_env)
    assert res["moved"] > 1e-4, "the update must change the parameters for the comparison to mean anything"
    assert res["param_diff"] < 1e-5, res
    assert res["norm_diff"] < 1e-4, res              # relative; float32 sums in another order
    assert res["updates"] == 5
    assert res["device_spread"] == 0.0, res          # replicas bit-identical after several updates
    assert res["env_obs_spread"] > 0.0, res          # while each device steps its own envs


def test_fused_replay_on_four_devices_equals_one_device(subprocess_env):
    """DQN on 4 forced host devices: gradient steps on the same global batch equal 1 device's; the
    sharded sampler's weights; a fused run keeps replicas identical; checkpoints move across counts."""
    res = _on_four_devices("sharded_replay_check.py", subprocess_env)
    assert res["moved"] > 1e-4, "the steps must change the parameters for the comparison to mean anything"
    assert res["param_diff"] < 1e-6, res             # online and target network after 3 steps
    assert res["td_diff"] < 1e-5, res                # the |TD| that become priorities
    assert res["weight_err"] < 1e-6 and res["from_own_shard"], res
    assert res["device_spread"] == 0.0, res          # replicas bit-identical after 84 gradient steps
    assert res["updates"] == res["gradient_steps"] == 84, res
    assert res["env_obs_spread"] > 0.0, res          # each device steps its own envs
    assert res["buffer_sizes"] == [98] * 4, res      # 49 stored steps (the first fills the 2-step window) x 2 envs
    assert res["learner_back"] == 0.0 and res["transitions_back"], res
    assert res["size_on_1"] == 4 * 98 + 9 * 8, res   # every transition, then 9 new steps of 8 envs
    assert res["sizes_back_on_4"] == [134] * 4, res
    assert res["steps_after"] == [60, 70] and res["grad_steps_after"] == [20, 20], res

