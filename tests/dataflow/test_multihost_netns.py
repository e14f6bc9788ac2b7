"""Distributed jobs across network-isolated "hosts": network namespaces on this machine joined by
veths and a bridge (`netns`). MPI runs over TCP on the veths (no shared memory),
and each host's interface counters show that the sample, inference, parameter and gradient
streams really crossed them. Skips, saying why, where namespaces cannot be made (not root, no `ip`).
"""
import json
import sys
import warnings

import pytest

from helpers import ROOT, subprocess_env

sys.path.insert(0, str(ROOT / "scripts"))   # netns.py lives beside its other user, bench_scaling.py
import netns  # noqa: E402

T, B = 16, 8                           # rollout length; envs per ring slot (16 envs, ring of 2)
JOB = ["-m", "srljax", "--no-run-dir", "--print-summary", "--config", "gym_cartpole", "--set", "env.num_envs=16",
       "--set", f"rollout.rollout_len={T}", "--set", "distributed.stop_at_return=null",
       "--set", "distributed.log_interval_s=0.5", "--set", "ppo.epochs=1"]


@pytest.fixture
def cluster():
    ok, why = netns.available()
    if not ok:
        warnings.warn(f"multi-host namespace tests skipped: {why}")
        pytest.skip(f"network namespaces not available here: {why}")
    c = netns.VirtualCluster(hosts=3)
    try:
        yield c
    finally:
        c.close()
        assert not netns.leftover_namespaces(c.tag), "namespaces left behind"


def _run(cluster, ranks_per_host, extra, timeout=150):
    import sys
    before = cluster.counters()
    rc, out, err, secs = cluster.mpirun(ranks_per_host, [sys.executable] + JOB + extra, timeout=timeout,
                                        env=subprocess_env(), cwd=str(ROOT))
    assert rc == 0, f"rc={rc}\n{err[-3000:]}"
    after = cluster.counters()
    moved = {h: (after[h][0] - before[h][0], after[h][1] - before[h][1]) for h in after}
    summary = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    print(f"{ranks_per_host} ranks per host: {secs:.1f} s, {summary['env_steps']} env steps; "
          f"bytes (rx, tx) per host: {moved}")
    return summary, [moved[a] for a in cluster.addresses]


def _sample_bytes():
    from srljax.dataflow.wire.schema import BatchSpec
    from srljax.envs import spaces
    return BatchSpec(T, B, (4,), spaces.Discrete(2)).samples().nbytes


def _param_bytes(*sets):
    from srljax import config as C
    from srljax import get_config
    from srljax.dataflow.plan import Plan
    args = [JOB[i + 1] for i, a in enumerate(JOB) if a == "--set"] + list(sets)
    plan = Plan(get_config("gym_cartpole", C.parse_set(args)), 4, local=False)
    return 4 * plan.codec(plan.algorithm()).size


def test_trainer_policy_and_actors_on_three_hosts(cluster):
    """Host 0: trainer; host 1: policy worker; host 2: two actors. Every stream crosses a veth."""
    summary, ((rx0, tx0), (rx1, tx1), (rx2, tx2)) = _run(cluster, [1, 1, 2], ["--set", "total_env_steps=20000"])
    assert (summary["trainers"], summary["policy_workers"], summary["actors"]) == (1, 1, 2)
    steps = summary["env_steps"]
    assert steps >= 20000 and summary["updates"] >= 5
    samples = steps // (T * B) * _sample_bytes()          # every sample the trainer took came over the wire
    assert samples > 1_000_000
    assert rx0 >= samples and tx2 >= samples, (rx0, tx2, samples)
    # Inference: each env step's observation (4 float32) to host 1, action + logp + value (12 bytes) back.
    params = _param_bytes()
    assert rx1 >= 16 * steps + params and rx2 >= 12 * steps + samples // 50, (rx1, rx2)
    # Parameters: trainer 0 on host 0 publishes to the policy worker on host 1, at least once per
    # update it has not superseded: more than one vector, through host 0's interface.
    assert tx0 >= 2 * params, (tx0, params)


def test_trainers_on_two_hosts_average_gradients_over_the_network(cluster):
    """Trainers on hosts 0 and 1 (inline inference in the actors on host 2): the gradient
    allreduce crosses the veths and both trainers end with identical parameters."""
    sets = ["--set", "distributed.trainers=2", "--set", "distributed.policy_workers=0",
            "--set", "distributed.inline_inference=true", "--set", "total_env_steps=8000"]
    summary, ((rx0, tx0), (rx1, tx1), (rx2, tx2)) = _run(cluster, [1, 1, 2], sets)
    digests = summary["trainer_params_digests"]
    assert summary["trainers"] == 2 and len(digests) == 2 and digests[0] == digests[1], digests
    updates = summary["updates"]
    assert updates >= 3
    per_trainer = summary["env_steps"] // 2 // (T * B) * _sample_bytes()
    assert rx0 >= per_trainer and rx1 >= per_trainer, (rx0, rx1, per_trainer)
    # Each gradient step (epochs x minibatches per update) allreduces one gradient vector (the size
    # of the parameters) between the two hosts: it goes out of host 1 and of host 0.
    grads = updates * 4 * _param_bytes() * 0.9          # 4 minibatches, 1 epoch per update
    assert tx1 >= grads and tx0 >= grads, (tx0, tx1, grads)
