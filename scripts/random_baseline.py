"""The return of uniformly random actions on a CPU env: the yardstick a trained run must beat.

    python scripts/random_baseline.py --env pz/mpe2.simple_spread_v3 --episodes 1000
    python scripts/random_baseline.py --env gym/CartPole-v1

Plays `--num-envs` copies of the env (any registry name of distributed mode: gym/, pz/, hns/) with
actions drawn uniformly from the action space, and prints the mean return of the first `--episodes`
episodes as JSON (for multi-agent games, as in training, an episode's return is the mean over agents).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srljax.envs import spaces  # noqa: E402
from srljax.envs.registry import make_vector  # noqa: E402
from srljax.errors import UserError  # noqa: E402


def random_actions(space, lead, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, spaces.Discrete):
        return rng.integers(0, space.n, size=lead)
    if isinstance(space, spaces.MultiDiscrete):
        return rng.integers(0, np.asarray(space.nvec), size=lead + (len(space.nvec),))
    low, high = np.broadcast_to(space.low, space.shape), np.broadcast_to(space.high, space.shape)
    low, high = np.where(np.isfinite(low), low, -1.0), np.where(np.isfinite(high), high, 1.0)
    return rng.uniform(low, high, size=lead + tuple(space.shape)).astype(np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", required=True, help="a CPU env name, e.g. pz/mpe2.simple_spread_v3")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--num-envs", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    try:
        env = make_vector(args.env, num_envs=args.num_envs, seed=args.seed)
    except UserError as exc:
        print(f"random_baseline.py: error: {exc}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    lead = (env.num_envs,) + ((env.num_agents,) if getattr(env, "num_agents", None) else ())
    env.reset(args.seed)
    returns = []
    while len(returns) < args.episodes:
        *_, info = env.step(random_actions(env.action_space, lead, rng))
        returns += [ep["return"] for ep in info["episodes"]]
    env.close()
    r = np.asarray(returns[:args.episodes])
    print(json.dumps({"env": args.env, "episodes": len(r), "return_mean": float(r.mean()),
                      "return_std": float(r.std()), "return_sem": float(r.std() / np.sqrt(len(r)))}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
