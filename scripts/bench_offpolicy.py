"""Off-policy side by side with rejax: fused DQN on CartPole-v1 and fused SAC on Pendulum-v1,
each configured to the same work per env step as rejax's tuned config, in one sitting, speed and
learning both.

    python3 -m venv /tmp/rejax && /tmp/rejax/bin/pip install rejax "gymnax==0.0.9" pyyaml
    python scripts/bench_offpolicy.py [--rounds 3] [--algos dqn,sac] [--peer-python /tmp/rejax/bin/python]

Round r (1-based) trains both sides with seed r - 1 (`--seed0` moves the seeds), each as its own
process, one after the other: rejax (its own `train`, jitted and compiled first, as
`../shared/peers/rejax_run.py` does, with the round's seed) and srljax (this script with `--srljax
ALGO`: XLA's CPU pool sized as `scripts/train.py` sizes it (`cpu_threads`: one thread for these
few envs), the jitted chunk compiled on a 1-step call, then the whole run timed as one call from a
fresh state). Both time the whole run (the buffer-filling phase included) with compile excluded.
Both are then evaluated the same way, as rejax does: 128 episodes of the greedy policy at the end
of training (rejax: its own evaluation, epsilon 0.005 for DQN; srljax: `srljax-evaluate`'s path,
`playback.play_jax` with the learner's `greedy`). Each round prints both env steps/s, both
evaluation returns and the ratio, and flags a round whose returns differ by more than the noise
band (`NOISE`: 10% of CartPole's return range, 100 for Pendulum); the end prints the median ratio
and the mean return of each side. On a loaded machine read the ratios (each pair runs back to back).

Matched settings (rejax's rejax_configs/cartpole.yaml `dqn` and pendulum.yaml `sac`; its networks
are MLPs of (64, 64) swish units for both, with flax's default LeCun-normal initialisation:
`network.init=lecun`):

- DQN: 10 envs, 5 gradient steps of 100 per env-batch step (10 env steps) after 5,000 env steps,
  a 50k buffer, double DQN with a dueling head, the squared TD loss (rejax's `optax.l2_loss`:
  `dqn.loss=l2`), lr 1e-3, target Polyak 0.02 once per 5 gradient steps (rejax updates its target
  once per env-batch step), epsilon 1 -> 0.05 over 50k steps, 100k env steps;
- SAC: 1 env, 1 gradient step of 256 per env step after 256 env steps, a 10k buffer, lr 0.01 for
  actor, critics and temperature, target Polyak 0.02 per gradient step, 10k env steps. rejax also
  normalises SAC's observations (a running mean and variance: a few vector operations per step).

Differences left: rejax clips each gradient element at 10 (srljax: the global norm at 10; neither
binds at these settings), ends the bootstrap at CartPole's 500-step time limit (srljax bootstraps
from the final observation of a truncated episode) and acts uniformly before learning starts
(srljax: epsilon-greedy from 1.0, 0.905 at 5k steps).
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
PEER_CONFIGS = ROOT.parent / "shared" / "peers" / "rejax_configs"
NOISE = {"dqn": 50.0, "sac": 100.0}     # returns further apart than this: the round is flagged
EVAL_EPISODES = 128

# rejax_run.py's timing with a seed argument (run by the peer's python)
PEER_CODE = """
import json, sys, time, jax, yaml, rejax
algo_name, cfg_path, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
config = yaml.safe_load(open(cfg_path))[algo_name]
config["eval_freq"] = config["total_timesteps"]      # evaluate once, at the end
algo = rejax.get_algo(algo_name).create(**config)
key = jax.random.PRNGKey(seed)
t = time.perf_counter()
train = jax.jit(algo.train).lower(key).compile()
compile_s = time.perf_counter() - t
t = time.perf_counter()
ts, (lengths, returns) = jax.block_until_ready(train(key))
dt = time.perf_counter() - t
steps = int(config["total_timesteps"])
print(json.dumps({"system": "rejax", "algo": algo_name, "seed": seed, "steps": steps, "steps_per_s": steps / dt,
                  "time_s": dt, "compile_s": compile_s, "eval_return": float(returns[-1].mean())}))
"""

MATCHED = {
    "dqn": ("cartpole", {
        "algorithm.name": "dqn", "env.id": "gymnax/CartPole-v1", "env.num_envs": 10,
        "network.hidden": [64, 64], "network.activation": "swish",
        "network.init": "lecun", "dqn.lr": 1e-3, "dqn.gamma": 0.99, "dqn.n_step": 1, "dqn.buffer_size": 50_000,
        "dqn.batch_size": 100,
        "dqn.learning_starts": 5_000, "dqn.train_every": 1, "dqn.gradient_steps": 5,
        "dqn.target_update_every": 5, "dqn.tau": 0.02, "dqn.epsilon_start": 1.0, "dqn.epsilon_end": 0.05,
        "dqn.epsilon_decay_steps": 50_000, "dqn.double": True, "dqn.dueling": True, "dqn.max_grad_norm": 10.0,
        "dqn.loss": "l2",
        "total_env_steps": 100_000}),
    "sac": ("pendulum", {
        "algorithm.name": "sac", "env.id": "gymnax/Pendulum-v1", "env.num_envs": 1,
        "network.hidden": [64, 64], "network.activation": "swish",
        "network.init": "lecun", "sac.lr": 0.01, "sac.alpha_lr": 0.01, "sac.gamma": 0.99, "sac.tau": 0.02,
        "sac.buffer_size": 10_000,
        "sac.batch_size": 256, "sac.learning_starts": 256, "sac.train_every": 1, "sac.gradient_steps": 1,
        "total_env_steps": 10_000}),
}


def matched_config(algo: str, seed: int = 0, **overrides):
    """The srljax config of `algo` at rejax's settings (`overrides`: dotted keys, e.g. total_env_steps)."""
    from srljax import config as C
    return C.validate(C.override(C.Config(name=f"bench_{algo}", seed=seed), {**MATCHED[algo][1], **overrides}))


def greedy_return(trainer, fs, episodes: int = EVAL_EPISODES, seed: int = 10_000) -> float:
    """Mean return of the first episode of `episodes` envs under the learner's greedy policy
    (`srljax-evaluate`'s path)."""
    import jax
    import numpy as np

    from srljax.playback import Greedy, play_jax
    params = jax.tree.map(lambda x: np.asarray(x)[0], fs.learner.params)      # device 0's replica
    returns, _ = play_jax(trainer.cfg, Greedy(trainer.algo), params, episodes, seed, record=False)
    return float(np.mean(returns))


def run_srljax(algo: str, seed: int = 0) -> dict:
    """One timed srljax run of the matched config with `seed`, in this process, then its greedy evaluation."""
    from srljax import process

    cfg = matched_config(algo, seed)
    process.prepare_fused_backend(cfg)      # as scripts/train.py: XLA's CPU pool sized before jax starts
    import jax

    from srljax.dataflow.fused.replay import FusedReplayTrainer

    trainer = FusedReplayTrainer(cfg)
    n = cfg.total_env_steps // cfg.env.num_envs
    fs = jax.block_until_ready(trainer.init(seed))
    t = time.perf_counter()
    trainer.compile(fs)                       # the jitted chunks (the step count is an argument)
    compile_s = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    out, m = trainer.chunk(fs, n)             # returns host numbers: the run has finished
    dt, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"system": "srljax", "algo": algo, "seed": seed, "env": cfg.env.id, "steps": n * cfg.env.num_envs,
            "steps_per_s": n * cfg.env.num_envs / dt, "time_s": dt, "cpu_s": cpu, "compile_s": compile_s,
            "gradient_steps": m["gradient_steps"], "last_100_return": trainer.last_returns(out),
            "mean_return": m["episode_return"], "eval_return": greedy_return(trainer, out)}


def _json_line(cmd, env=None, timeout=900) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(ROOT))
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        shown = " ".join("<rejax peer code>" if c == PEER_CODE else str(c) for c in cmd)
        raise SystemExit(f"{shown} failed ({out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--algos", default="dqn,sac")
    p.add_argument("--seed0", type=int, default=0, help="round r trains with seed seed0 + r - 1 on both sides")
    p.add_argument("--peer-python", default="/tmp/rejax/bin/python")
    p.add_argument("--peer-configs", type=Path, default=PEER_CONFIGS, help="rejax's tuned configs (rejax_configs/)")
    p.add_argument("--srljax", choices=sorted(MATCHED), help=argparse.SUPPRESS)   # one srljax run, as JSON
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.srljax:
        print(json.dumps(run_srljax(args.srljax, args.seed)))
        return
    algos = args.algos.split(",")
    unknown = sorted(set(algos) - set(MATCHED))
    if unknown or args.rounds < 1:
        p.error(f"--algos takes {','.join(sorted(MATCHED))} (got {','.join(unknown)}); --rounds >= 1")
    if not Path(args.peer_python).exists():
        p.error(f"--peer-python {args.peer_python} does not exist; set up rejax as this script's docstring says")
    if not (args.peer_configs / "cartpole.yaml").exists():
        p.error(f"--peer-configs {args.peer_configs} holds no cartpole.yaml (../shared/peers/rejax_configs)")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    summary = {}
    for algo in algos:
        rows = []
        for r in range(1, args.rounds + 1):
            seed = args.seed0 + r - 1
            peer_config = args.peer_configs / f"{MATCHED[algo][0]}.yaml"
            peer = _json_line([args.peer_python, "-c", PEER_CODE, algo, str(peer_config), str(seed)])
            ours = _json_line([sys.executable, __file__, "--srljax", algo, "--seed", str(seed)], env=env)
            ratio = ours["steps_per_s"] / peer["steps_per_s"]
            gap = ours["eval_return"] - peer["eval_return"]
            flag = f"  <-- returns differ by {gap:+.1f}, beyond the noise band {NOISE[algo]:g}" \
                if abs(gap) > NOISE[algo] else ""
            rows.append({"seed": seed, "ratio": ratio, "rejax": peer, "srljax": ours, "flagged": bool(flag)})
            print(f"{algo} round {r} (seed {seed}): rejax {peer['steps_per_s']:,.0f} env steps/s, eval return "
                  f"{peer['eval_return']:.1f}; srljax {ours['steps_per_s']:,.0f} env steps/s, eval return "
                  f"{ours['eval_return']:.1f} (last-100 training {ours['last_100_return']:.1f}); "
                  f"ratio {ratio:.2f}{flag}",
                  flush=True)
        ratios = [row["ratio"] for row in rows]
        summary[algo] = {"median_ratio": statistics.median(ratios), "ratios": ratios,
                         "eval_return_rejax": statistics.mean(row["rejax"]["eval_return"] for row in rows),
                         "eval_return_srljax": statistics.mean(row["srljax"]["eval_return"] for row in rows),
                         "flagged_rounds": sum(row["flagged"] for row in rows)}
        a = summary[algo]
        print(f"{algo}: median srljax / rejax {a['median_ratio']:.2f} over {len(ratios)} rounds; mean eval return "
              f"rejax {a['eval_return_rejax']:.1f}, srljax {a['eval_return_srljax']:.1f}; "
              f"{a['flagged_rounds']} round(s) flagged", flush=True)
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
