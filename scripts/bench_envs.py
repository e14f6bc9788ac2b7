"""Environment throughput: env steps per second on one CPU core.

CPU section (this file): the MuJoCo hide-and-seek vector env with random actions (full rules and
observations), next to MuJoCo physics alone on the very same models and layouts (`mj_step` with 15
substeps and random controls, no rules, rays or observations), and their ratio.

    python scripts/bench_envs.py --variants quadrant full --num-envs 16 --out bench_envs.json

Sections are functions returning rows of a table; a JAX-env section can be added next to
`cpu_section` and selected with `--sections`.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Dict, List  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from srljax.envs.hide_and_seek import make_vec_env  # noqa: E402
from srljax.envs.hide_and_seek.scene import SUBSTEPS  # noqa: E402

NVEC = np.array([11, 11, 11, 2, 2])


def time_env(env, actions: np.ndarray) -> float:
    """Seconds to step the env through `actions` [T, E, A, 5]."""
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    return time.perf_counter() - t0


def time_physics(env, ctrls: np.ndarray) -> float:
    """Seconds for the same number of env steps of physics alone on the env's own models."""
    pairs = list(zip(env.models, env.datas))
    step = mujoco.mj_step
    t0 = time.perf_counter()
    for c in ctrls:
        for e, (m, d) in enumerate(pairs):
            d.ctrl[:] = c[e]
            step(m, d, SUBSTEPS)
    return time.perf_counter() - t0


def bench_hns(variant: str, num_envs: int, env_steps: int, chunk: int = 400, seed: int = 0) -> Dict:
    """Env and physics-alone throughput, timed in alternating chunks of about `chunk` env steps so
    that load from other processes on a shared machine hits both alike; the ratio is of the totals."""
    env = make_vec_env(variant, num_envs=num_envs, seed=seed)
    env.reset(seed)
    rng = np.random.default_rng(seed)
    n_agents, nu = env.num_agents, env.models[0].nu
    time_env(env, rng.integers(0, NVEC, size=(10, num_envs, n_agents, 5)))      # warm up
    steps = max(1, chunk // num_envs)
    n_chunks = max(1, env_steps // (steps * num_envs))
    env_s, phys_s = [], []
    for _ in range(n_chunks):
        env_s.append(time_env(env, rng.integers(0, NVEC, size=(steps, num_envs, n_agents, 5))))
        phys_s.append(time_physics(env, rng.uniform(-0.9, 0.9, size=(steps, num_envs, nu))))
    n = steps * num_envs * n_chunks
    env_sps, phys_sps = n / sum(env_s), n / sum(phys_s)
    return {"section": "cpu", "env": f"hns/{variant}", "num_envs": num_envs, "env_steps": n,
            "env_steps_per_s": env_sps, "physics_steps_per_s": phys_sps,
            "ratio": env_sps / phys_sps, "us_per_env_step": 1e6 / env_sps,
            "us_per_physics_step": 1e6 / phys_sps,
            "best_chunk_env_steps_per_s": steps * num_envs / min(env_s),
            "best_chunk_physics_steps_per_s": steps * num_envs / min(phys_s)}


def cpu_section(args) -> List[Dict]:
    rows = []
    for variant in args.variants:
        for e in args.num_envs:
            rows.append(bench_hns(variant, e, args.env_steps, args.chunk, args.seed))
            print_row(rows[-1])
    return rows


SECTIONS = {"cpu": cpu_section}


def print_header() -> None:
    print(f"{'env':<14} {'envs':>5} {'env steps/s':>12} {'physics/s':>10} {'ratio':>6} "
          f"{'us/step':>8} {'us/phys':>8}")


def print_row(r: Dict) -> None:
    print(f"{r['env']:<14} {r['num_envs']:>5} {r['env_steps_per_s']:>12.0f} "
          f"{r['physics_steps_per_s']:>10.0f} {r['ratio']:>6.2f} {r['us_per_env_step']:>8.0f} "
          f"{r['us_per_physics_step']:>8.0f}", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", default=["cpu"], choices=sorted(SECTIONS))
    p.add_argument("--variants", nargs="+", default=["quadrant", "full"], choices=["quadrant", "full"])
    p.add_argument("--num-envs", nargs="+", type=int, default=[16],
                   help="batch sizes (envs stepped by one core)")
    p.add_argument("--env-steps", type=int, default=4800, help="env steps timed per row (each of env "
                   "and physics alone)")
    p.add_argument("--chunk", type=int, default=400, help="env steps per alternating timed chunk")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    print_header()
    rows = []
    for s in args.sections:
        rows += SECTIONS[s](args)
    if args.out:
        meta = {"python": platform.python_version(), "mujoco": mujoco.__version__,
                "machine": platform.machine(), "processor": platform.processor(),
                "threads": os.environ.get("OMP_NUM_THREADS"), "argv": sys.argv[1:]}
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
