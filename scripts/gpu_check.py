#!/usr/bin/env python
"""The accelerator check: one script, one JSON, within a time budget (8 minutes on one GPU).

    python scripts/gpu_check.py --out runs/gpu_check.json            # on a lent GPU
    python scripts/gpu_check.py --tiny --out /tmp/gpu_check.json      # CPU, seconds (run by the tests)

It measures, on whatever device JAX finds (it says which):

1. env steps/s against batch size, through srljax's env stack (batched, auto-reset, episode
   statistics) inside one jitted `lax.scan`, random actions: gymnax CartPole-v1 at 2^4 ... 2^20
   envs and brax ant at 2^4 ... 2^16 (compile excluded; a size that runs out of memory or past
   the budget is recorded as such, and the larger sizes are skipped);
   The JAX hide-and-seek game (`hns_jax/quadrant`, rules, lidar, vision and observations) at 2^6 ...
   2^18 games;
2. fused PPO on brax ant (the `brax_ant` preset): env steps/s after the first (compiling) call;
3. the learner's update alone on one batch of that preset: milliseconds per update;
4. fused self-play training of the JAX game (the `hns_jax_quadrant` preset at 4,096 games): env
   steps/s after the first call.

Each section gets a share of `--budget-s`; what did not fit is marked `"skipped": "budget"`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from srljax.process import enable_compile_cache  # noqa: E402

enable_compile_cache()


class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


def env_curve(name: str, sizes, steps_per_call: int, min_time: float, budget: Budget, share_end: float):
    """Env steps/s of srljax's stack of `name` at each batch size, until memory or the budget runs out."""
    from bench_envs import srljax_runner
    rows = []
    for batch in sizes:
        if time.monotonic() > share_end:
            rows.append({"env": name, "batch": batch, "skipped": "budget"})
            continue
        steps = max(4, min(1000, steps_per_call // batch))
        try:
            runner = srljax_runner(name, batch, steps, policy=False)
            per_s, per_cpu_s = runner.timed(min_time)
        except Exception as exc:                      # XLA's RESOURCE_EXHAUSTED, mostly
            if "RESOURCE_EXHAUSTED" not in str(exc) and "out of memory" not in str(exc).lower():
                raise
            rows.append({"env": name, "batch": batch, "skipped": "out of memory"})
            break
        rows.append({"env": name, "batch": batch, "scan_steps": steps, "env_steps_per_s": per_s,
                     "compile_s": runner.compile_s})
        print(f"  {name:<22} batch {batch:>9,}: {per_s:>14,.0f} env steps/s", file=sys.stderr, flush=True)
    return rows


def hns_curve(variant: str, sizes, min_time: float, share_end: float, tiny: bool):
    """Env steps/s of the whole JAX hide-and-seek game (`hns_jax/`) at each batch size, random
    actions, until memory or the budget runs out."""
    from bench_envs import hns_jax_runner
    rows = []
    for batch in sizes:
        if time.monotonic() > share_end:
            rows.append({"env": f"hns_jax/{variant}", "batch": batch, "skipped": "budget"})
            continue
        steps = 4 if tiny else max(8, min(80, (1 << 20) // batch))
        try:
            runner = hns_jax_runner(variant, batch, steps, layouts=16 if tiny else 512)
            per_s, _ = runner.timed(min_time)
        except Exception as exc:
            if "RESOURCE_EXHAUSTED" not in str(exc) and "out of memory" not in str(exc).lower():
                raise
            rows.append({"env": f"hns_jax/{variant}", "batch": batch, "skipped": "out of memory"})
            break
        rows.append({"env": f"hns_jax/{variant}", "batch": batch, "scan_steps": steps, "env_steps_per_s": per_s,
                     "compile_s": runner.compile_s})
        print(f"  hns_jax/{variant:<14} batch {batch:>9,}: {per_s:>14,.0f} env steps/s", file=sys.stderr, flush=True)
    return rows


def fused_rate(preset: str, overrides: dict, calls: int):
    """(fused training env steps/s after the first (compiling) call, the checked config, trainer, state)."""
    import jax

    from srljax import config as C
    from srljax import presets
    from srljax.dataflow.fused.rollout import FusedTrainer
    from srljax.run import check

    cfg = check(C.override(presets.get(preset), overrides))
    trainer = FusedTrainer(cfg)
    fs = trainer.init(cfg.seed)
    per_log = max(1, cfg.log_every_env_steps // cfg.steps_per_update())
    t = time.perf_counter()
    fs, _ = trainer.chunk(fs, per_log)
    jax.block_until_ready(fs.env_steps)
    first_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(calls):
        fs, m = trainer.chunk(fs, per_log)
    jax.block_until_ready(fs.env_steps)
    dt = time.perf_counter() - t
    rate = {"preset": preset, "num_envs": cfg.env.num_envs, "rollout_len": cfg.rollout.rollout_len,
            "devices": len(trainer.devices), "updates": calls * per_log,
            "env_steps_per_s": calls * per_log * cfg.steps_per_update() / dt, "first_call_s": first_s}
    return rate, cfg, trainer


def fused_ppo(overrides: dict, calls: int):
    """Fused PPO on brax ant: env steps/s after the first (compiling) call, and the update alone in ms."""
    import jax
    import numpy as np

    ppo, cfg, trainer = fused_rate("brax_ant", overrides, calls)

    # the learner's update alone, on one device's batch of the same shape
    rng = np.random.default_rng(0)
    T, B = cfg.rollout.rollout_len, trainer.local_envs
    obs_dim, act_dim = trainer.env.observation_space.shape[0], trainer.env.action_space.shape[0]
    batch = {"obs": rng.normal(size=(T, B, obs_dim)).astype(np.float32),
             "final_obs": rng.normal(size=(T, B, obs_dim)).astype(np.float32),
             "action": rng.normal(size=(T, B, act_dim)).astype(np.float32),
             "logp": np.zeros((T, B), np.float32), "reward": rng.normal(size=(T, B)).astype(np.float32),
             "terminated": np.zeros((T, B), np.float32), "truncated": np.zeros((T, B), np.float32)}
    from srljax.learners import make_algorithm
    single = make_algorithm(cfg, trainer.env.observation_space, trainer.env.action_space)
    state = single.init(jax.random.PRNGKey(0), batch)
    update = jax.jit(single.update)
    state, _ = jax.block_until_ready(update(state, batch))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        state, _ = jax.block_until_ready(update(state, batch))
        times.append(time.perf_counter() - t)
    update_row = {"T": T, "B": B, "epochs": cfg.ppo.epochs, "minibatches": cfg.ppo.minibatches,
                  "update_ms_median": 1e3 * sorted(times)[len(times) // 2], "update_ms_min": 1e3 * min(times)}
    return ppo, update_row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/gpu_check.json")
    p.add_argument("--budget-s", type=float, default=450.0, help="wall-clock budget for all sections")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (CPU smoke run, a few seconds)")
    args = p.parse_args(argv)

    import jax
    budget = Budget(args.budget_s)
    dev = jax.devices()[0]
    out = {"device": {"platform": dev.platform, "kind": getattr(dev, "device_kind", ""),
                      "count": jax.device_count()}, "budget_s": args.budget_s, "tiny": args.tiny}
    if args.tiny:
        cart, ant, hns, per_call, min_time = [4, 16], [4], [2], 256, 0.05
        ppo_over = {"env.num_envs": 8, "rollout.rollout_len": 8, "ppo.minibatches": 2, "ppo.epochs": 1,
                    "network.hidden": [16], "log_every_env_steps": 64}
        # tests/test_matchup_jax.py's tiny run: one compiled program for both (the compile cache)
        hns_over = {"network.hidden": [8, 8], "env.num_envs": 4, "rollout.rollout_len": 20, "ppo.minibatches": 2,
                    "env.kwargs": {"horizon": 20, "prep_steps": 8, "layouts": 64, "random_opponents": 0.5},
                    "log_every_env_steps": 80, "cpu_devices": 1}
        calls = 1
    else:
        cart, ant = [2 ** k for k in range(4, 21, 2)], [2 ** k for k in range(4, 17, 2)]
        hns = [2 ** k for k in range(6, 19, 2)]
        per_call, min_time, ppo_over, calls = 1 << 22, 1.0, {}, 5
        hns_over = {"env.num_envs": 4096, "log_every_env_steps": 4096 * 40}
    start = time.monotonic()
    at = lambda share: start + share * args.budget_s      # noqa: E731
    out["env_steps_per_s"] = env_curve("gymnax/CartPole-v1", cart, per_call, min_time, budget, at(0.2))
    out["env_steps_per_s"] += env_curve("brax/ant", ant, per_call, min_time, budget, at(0.4))
    out["env_steps_per_s"] += hns_curve("quadrant", hns, min_time, at(0.6), args.tiny)
    if budget.left() > 0.3 * args.budget_s or args.tiny:
        out["fused_ppo_brax_ant"], out["learner_update"] = fused_ppo(ppo_over, calls)
        print(f"  fused PPO brax ant: {out['fused_ppo_brax_ant']['env_steps_per_s']:,.0f} env steps/s; "
              f"update {out['learner_update']['update_ms_median']:.1f} ms", file=sys.stderr)
    else:
        out["fused_ppo_brax_ant"] = out["learner_update"] = {"skipped": "budget"}
    if budget.left() > 0.15 * args.budget_s or args.tiny:
        out["fused_hns_jax_quadrant"] = fused_rate("hns_jax_quadrant", hns_over, calls)[0]
        print(f"  fused hns_jax_quadrant: {out['fused_hns_jax_quadrant']['env_steps_per_s']:,.0f} env steps/s",
              file=sys.stderr)
    else:
        out["fused_hns_jax_quadrant"] = {"skipped": "budget"}
    out["wall_s"] = time.monotonic() - start
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out} ({out['wall_s']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
