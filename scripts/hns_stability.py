"""Physics stability of hide-and-seek: N random-action episodes, count those MuJoCo cut short.

An episode ends early ("unstable") when MuJoCo reports blown-up accelerations and resets the
simulation (`info["episodes"][k]["unstable"]`). Random actions (uniform over every action part,
grab and lock included) from a generator seeded by --seed; envs seeded by --seed too.

    python scripts/hns_stability.py --variant full --episodes 1000 --num-envs 4
    python scripts/hns_stability.py --episodes 300 --dump unstable.npz   # save the first unstable
                                                                          # episode (layout, actions)

Prints one line per 100 episodes and a final line `unstable U / N episodes`; exit code 0.
With --dump, the first unstable episode's layout and actions are saved for a one-env replay
(`replay(path)` below returns the env stepped up to the step before the blow-up).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from srljax.envs.hide_and_seek.env import HideAndSeekVecEnv  # noqa: E402
from srljax.envs.hide_and_seek.layout import Layout, draw_layout  # noqa: E402

NVEC = np.array([11, 11, 11, 2, 2])


def run(variant: str, episodes: int, num_envs: int, seed: int, dump: str | None = None,
        quiet: bool = False) -> dict:
    """Step `num_envs` envs with random actions until `episodes` episodes have ended."""
    drawn = []            # layouts in the order the env draws them: env 0..E-1 at reset(), then
                          # the envs that ended, in ascending order, at each auto-reset

    def layout_fn(rng):
        drawn.append(draw_layout(variant, rng))
        return drawn[-1]
    env = HideAndSeekVecEnv(variant, num_envs=num_envs, seed=seed, layout_fn=layout_fn)
    env.reset(seed)
    current = drawn[-num_envs:]            # the layout each env is playing
    rng = np.random.default_rng(seed)
    history = [[] for _ in range(num_envs)]
    done, unstable, dumped = 0, 0, False
    t0 = time.perf_counter()
    steps = 0
    # MuJoCo writes its warnings to MUJOCO_LOG.TXT in the working directory: keep it out of the repo
    cwd = os.getcwd()
    tmp = tempfile.mkdtemp(prefix="hns_stability_")
    os.chdir(tmp)
    try:
        while done < episodes:
            a = rng.integers(0, NVEC, size=(num_envs, env.num_agents, 5))
            if dump:
                for e in range(num_envs):
                    history[e].append(a[e].copy())
            _, _, _, trunc, info = env.step(a)
            steps += num_envs
            ended = np.flatnonzero(trunc)
            for e, ep in zip(ended, info["episodes"]):
                if done >= episodes:
                    break
                done += 1
                if ep["unstable"]:
                    unstable += 1
                    if not quiet:
                        print(f"  episode {done}: unstable at step {ep['length']} (env {e})", flush=True)
                    if dump and not dumped:
                        lay = current[e]
                        np.savez(os.path.join(cwd, dump), actions=np.array(history[e]),
                                 variant=variant, **{f"layout_{k}": v for k, v in
                                                     dataclasses.asdict(lay).items()})
                        dumped = True
                if not quiet and done % 100 == 0:
                    print(f"{done} episodes, {unstable} unstable, "
                          f"{steps / (time.perf_counter() - t0):.0f} env steps/s", flush=True)
            if len(ended):
                for e, lay in zip(ended, drawn[-len(ended):]):
                    current[e] = lay
                    history[e] = []
                del drawn[:]
    finally:
        os.chdir(cwd)
    return {"episodes": done, "unstable": unstable, "env_steps": steps,
            "seconds": time.perf_counter() - t0}


def replay(path: str, steps: int | None = None) -> HideAndSeekVecEnv:
    """A one-env replay of a dumped episode, stepped `steps` times (default: all but the last)."""
    z = np.load(path)
    kw = {k[len("layout_"):]: z[k] for k in z.files if k.startswith("layout_")}
    kw["rooms"] = int(kw["rooms"])
    lay = Layout(**kw)
    env = HideAndSeekVecEnv(str(z["variant"]), num_envs=1, layout_fn=lambda rng: lay)
    env.reset(0)
    acts = z["actions"]
    n = len(acts) - 1 if steps is None else steps
    for a in acts[:n]:
        env.step(a[None])
    return env


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", default="full", choices=["full", "quadrant"])
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--num-envs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dump", default=None, help="save the first unstable episode to this .npz")
    args = p.parse_args(argv)
    r = run(args.variant, args.episodes, args.num_envs, args.seed, args.dump)
    print(f"hns/{args.variant}: unstable {r['unstable']} / {r['episodes']} episodes "
          f"({r['env_steps']} env steps in {r['seconds']:.0f} s, "
          f"{r['env_steps'] / r['seconds']:.0f} env steps/s; --num-envs {args.num_envs} --seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
