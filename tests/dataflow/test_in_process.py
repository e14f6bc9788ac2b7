"""The distributed config in one process: the same workers over in-process streams, learning."""
from srljax import config as C
from srljax import get_config, run


def resolve_config(name, sets):
    return get_config(name, C.parse_set(sets))


def test_gym_cartpole_learns_in_one_process():
    cfg = resolve_config("gym_cartpole", ["total_env_steps=40000", "distributed.stop_at_return=null"])
    summary = run(cfg).summary
    assert summary["in_process"] and summary["actors"] == 2 and summary["policy_workers"] == 1
    assert summary["env_steps"] >= 40000 and summary["updates"] >= 15
    assert summary["episode_return"] > 60, summary      # a random policy scores about 22


def test_inline_inference_in_one_process_with_continuous_actions():
    cfg = resolve_config("gym_cartpole", [
        "env.id=gym/Pendulum-v1", "env.num_envs=8", "rollout.rollout_len=16", "distributed.policy_workers=0",
        "distributed.inline_inference=true", "distributed.actors=1", "distributed.stop_at_return=null",
        "total_env_steps=3000"])
    summary = run(cfg).summary
    assert summary["policy_workers"] == 0 and summary["actors"] == 1
    assert summary["env_steps"] >= 3000 and summary["updates"] >= 10
    assert summary["episode_return"] is not None and summary["episode_return"] < 0   # Pendulum's returns
