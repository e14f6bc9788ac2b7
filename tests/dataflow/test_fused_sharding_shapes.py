"""Data parallelism for every policy and env shape: 4 forced host devices give the update 1 device
gives, for a recurrent policy and for a multi-agent env (its own file, so `make test`'s workers
run it beside test_fused_sharding.py)."""
from helpers import on_four_devices as _on_four_devices


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
