"""Off-policy speed side by side with rejax: fused DQN on CartPole-v1 and fused SAC on Pendulum-v1,
each configured to the same work per env step as rejax's tuned config, in one sitting.

    python3 -m venv /tmp/rejax && /tmp/rejax/bin/pip install rejax "gymnax==0.0.9" pyyaml
    python scripts/bench_offpolicy.py [--rounds 3] [--algos dqn,sac] [--peer-python /tmp/rejax/bin/python]

Each round runs, one after the other, each as its own process: rejax (`../shared/peers/rejax_run.py
ALGO CONFIG`, which times `jax.jit(algo.train)` after compiling it) and srljax (this script with
`--srljax ALGO`: the jitted chunk compiled on a 1-step call, then the whole run timed as one call
from a fresh state). Both time the whole run (the buffer-filling phase included) with compile
excluded. It prints env steps/s of each run, the ratio per round and the median ratio; on a loaded
machine read the ratios (each pair runs back to back), not the absolute figures.

Matched settings (rejax's rejax_configs/cartpole.yaml `dqn` and pendulum.yaml `sac`; its networks
are MLPs of (64, 64) swish units for both):

- DQN: 10 envs, 5 gradient steps of 100 per env-batch step (10 env steps) after 5,000 env steps,
  a 50k buffer, double DQN with a dueling head, lr 1e-3, target Polyak 0.02 once per 5 gradient
  steps (rejax updates its target once per env-batch step), epsilon 1 -> 0.05 over 50k steps,
  100k env steps;
- SAC: 1 env, 1 gradient step of 256 per env step after 256 env steps, a 10k buffer, lr 0.01 for
  actor, critics and temperature, target Polyak 0.02 per gradient step, 10k env steps. rejax also
  normalises SAC's observations (a running mean and variance: a few vector operations per step).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT.parent / "shared" / "peers" / "rejax_run.py"

MATCHED = {
    "dqn": ("cartpole", {
        "algorithm.name": "dqn", "env.id": "gymnax/CartPole-v1", "env.num_envs": 10,
        "network.hidden": [64, 64], "network.activation": "swish",
        "dqn.lr": 1e-3, "dqn.gamma": 0.99, "dqn.n_step": 1, "dqn.buffer_size": 50_000, "dqn.batch_size": 100,
        "dqn.learning_starts": 5_000, "dqn.train_every": 1, "dqn.gradient_steps": 5,
        "dqn.target_update_every": 5, "dqn.tau": 0.02, "dqn.epsilon_start": 1.0, "dqn.epsilon_end": 0.05,
        "dqn.epsilon_decay_steps": 50_000, "dqn.double": True, "dqn.dueling": True, "dqn.max_grad_norm": 10.0,
        "total_env_steps": 100_000}),
    "sac": ("pendulum", {
        "algorithm.name": "sac", "env.id": "gymnax/Pendulum-v1", "env.num_envs": 1,
        "network.hidden": [64, 64], "network.activation": "swish",
        "sac.lr": 0.01, "sac.alpha_lr": 0.01, "sac.gamma": 0.99, "sac.tau": 0.02, "sac.buffer_size": 10_000,
        "sac.batch_size": 256, "sac.learning_starts": 256, "sac.train_every": 1, "sac.gradient_steps": 1,
        "total_env_steps": 10_000}),
}


def run_srljax(algo: str) -> dict:
    """One timed srljax run of the matched config, in this process."""
    import jax
    import numpy as np

    from srljax import config as C
    from srljax.dataflow.fused_replay import ReplayTrainer

    cfg = C.validate(C.override(C.Config(name=f"bench_{algo}"), MATCHED[algo][1]))
    trainer = ReplayTrainer(cfg)
    n = cfg.total_env_steps // cfg.env.num_envs
    fs = jax.block_until_ready(trainer.init(0))
    t = time.perf_counter()
    trainer.compile(fs)                       # the jitted chunks (the step count is an argument)
    compile_s = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    out, m = trainer.chunk(fs, n)             # returns host numbers: the run has finished
    dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"system": "srljax", "algo": algo, "env": cfg.env.id, "steps": n * cfg.env.num_envs,
            "steps_per_s": n * cfg.env.num_envs / dt, "time_s": dt, "cpu_s": cpu, "compile_s": compile_s,
            "gradient_steps": m["gradient_steps"], "last_100_return": trainer.last_returns(out),
            "mean_return": m["episode_return"]}


def _json_line(cmd, env=None, timeout=900) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--algos", default="dqn,sac")
    p.add_argument("--peer-python", default="/tmp/rejax/bin/python")
    p.add_argument("--srljax", choices=sorted(MATCHED), help=argparse.SUPPRESS)   # one srljax run, as JSON
    args = p.parse_args()
    if args.srljax:
        print(json.dumps(run_srljax(args.srljax)))
        return
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    summary = {}
    for algo in args.algos.split(","):
        ratios = []
        for r in range(1, args.rounds + 1):
            peer = _json_line([args.peer_python, str(PEER), algo, MATCHED[algo][0]])
            ours = _json_line([sys.executable, __file__, "--srljax", algo], env=env)
            ratio = ours["steps_per_s"] / peer["steps_per_s"]
            ratios.append(ratio)
            print(f"{algo} round {r}: rejax {peer['steps_per_s']:,.0f} env steps/s (return {peer['final_return']:.1f}), "
                  f"srljax {ours['steps_per_s']:,.0f} env steps/s (last-100 return {ours['last_100_return']}), "
                  f"ratio {ratio:.2f}", flush=True)
        summary[algo] = statistics.median(ratios)
        print(f"{algo}: median srljax / rejax {summary[algo]:.2f} over {len(ratios)} rounds", flush=True)
    print(json.dumps({"median_ratio": summary}))


if __name__ == "__main__":
    main()
