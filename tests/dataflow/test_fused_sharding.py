"""Data parallelism: 4 forced host devices give the same update as 1 device, and stay in sync."""
import json
import subprocess
import sys
from pathlib import Path


def _on_four_devices(script: str, env) -> dict:
    """Run a check script beside this file on 4 forced host devices; its last line as JSON."""
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
    out = subprocess.run([sys.executable, str(Path(__file__).with_name(script))], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


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


def test_a_recurrent_policy_on_four_devices_equals_one_device(subprocess_env):
    """An LSTM policy: the update on the same global batch (whole chunks dealt to minibatches by
    global column id) equals 1 device's; a fused run keeps replicas identical, each device carrying
    its own envs' recurrent state."""
    res = _on_four_devices("sharded_recurrent_check.py", subprocess_env)
    assert res["moved"] > 1e-4, "the update must change the parameters for the comparison to mean anything"
    assert res["param_diff"] < 1e-5 and res["loss_diff"] < 1e-5, res
    assert res["updates"] == 5 and res["device_spread"] == 0.0, res
    assert res["carry_shape"] == [4, 2, 64] and res["carry_spread"] > 0.0, res    # [devices, envs, 2 x 32]


def test_a_multi_agent_env_on_four_devices_equals_one_device(subprocess_env):
    """JaxMARL's simple_spread (3 agents, one policy), feedforward and LSTM: the update on the same
    global batch of (env, agent) columns equals 1 device's; a fused run keeps replicas identical."""
    res = _on_four_devices("sharded_multiagent_check.py", subprocess_env)
    for core, r in res.items():
        assert r["moved"] > 1e-4 and r["param_diff"] < 1e-5, (core, r)
        assert r["updates"] == 3 and r["device_spread"] == 0.0, (core, r)
        assert r["obs_shape"] == [4, 2, 3, 18], (core, r)                 # [devices, envs, agents, obs]
    assert res["lstm"]["carry_shape"] == [4, 6, 64], res                  # a carry per (env, agent)
