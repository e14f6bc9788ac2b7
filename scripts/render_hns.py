"""Render a hide-and-seek game top-down: a PNG of its first state or a GIF of an episode.

    python scripts/render_hns.py --variant quadrant --seed 0 --out docs/hns_quadrant_random.gif --steps 80
    python scripts/render_hns.py --variant full --seed 3 --out docs/hns_full_start.png

Actions are uniformly random (seeded) unless a policy is plugged in through `rollout_frames`.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from srljax.envs.hide_and_seek import make_vec_env  # noqa: E402
from srljax.envs.hide_and_seek.render import snapshot, write_gif, write_png  # noqa: E402


def rollout_frames(variant: str, seed: int, steps: int, policy=None):
    """Frames of one episode of env 0 (the reset state, then one per step, up to the horizon).
    policy(obs, rng) -> actions [1, num_agents, 5]; random when None."""
    env = make_vec_env(variant, num_envs=1, seed=seed)
    obs = env.reset(seed)
    rng = np.random.default_rng(seed)
    frames = [snapshot(env)]
    for _ in range(min(steps, env.spec.horizon)):
        if policy is None:
            actions = rng.integers(0, np.array(env.action_space.nvec), size=(1, env.num_agents, 5))
        else:
            actions = policy(obs, rng)
        obs, _, _, truncated, _ = env.step(actions)
        if truncated[0]:
            break       # the env has auto-reset: the state now belongs to the next episode
        frames.append(snapshot(env))
    return frames


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="quadrant", choices=["quadrant", "full"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=80, help="env steps to render (GIF)")
    p.add_argument("--out", required=True, help="a .gif (episode) or .png (first state)")
    p.add_argument("--fps", type=int, default=8)
    p.add_argument("--size", type=int, default=320, help="image side in pixels")
    args = p.parse_args(argv)
    ext = os.path.splitext(args.out)[1].lower()
    if ext not in (".gif", ".png"):
        print(f"error: --out must end in .gif or .png, got {args.out!r}", file=sys.stderr)
        return 2
    frames = rollout_frames(args.variant, args.seed, args.steps if ext == ".gif" else 0)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if ext == ".gif":
        write_gif(frames, args.out, fps=args.fps, size_px=args.size)
    else:
        write_png(frames[0], args.out, size_px=args.size)
    print(f"wrote {args.out} ({len(frames)} frame{'s' if len(frames) > 1 else ''}, "
          f"{os.path.getsize(args.out) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
