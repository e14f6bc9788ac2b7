#!/usr/bin/env python
"""Many seeds in one program: total env steps per second of a population, compile excluded.

Three ways to train N seeds of the same fused PPO run, timed in alternating rounds in one sitting:
- srljax's population (`--seeds N`: the N runs vmapped inside one jitted program);
- srljax's single run, N times one after the other (one trainer, compiled once, `init(seed + i)`);
- with `--purejaxrl PYTHON`, PureJaxRL's own vmapped seeds (`../shared/peers/purejaxrl_cartpole.py
  1 NUM_ENVS N`: `jax.jit(jax.vmap(make_train(config)))` over N keys), in its own venv.
Each reports env steps/s summed over seeds and every seed's final return (srljax: the mean of its
last 100 episodes; PureJaxRL: the mean over seeds of its last 10 updates' episodes).

    python scripts/bench_seeds.py --seeds 16 --purejaxrl /tmp/pjx/bin/python --rounds 3 --out bench_seeds.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "purejaxrl_cartpole.py"


def bench_population(cfg, seeds: int) -> dict:
    import jax

    from srljax import config as C
    from srljax.dataflow.fused.loop import ring_mean
    from srljax.dataflow.fused.rollout import FusedTrainer

    trainer = FusedTrainer(C.override(cfg, {"seeds": seeds}))
    trainer.chunk(trainer.init(cfg.seed), 0)                 # compiles
    fs = trainer.init(cfg.seed)
    jax.block_until_ready(fs)
    t = time.perf_counter()
    fs, _ = trainer.chunk(fs, cfg.num_updates())
    jax.block_until_ready(fs.env_steps)
    dt = time.perf_counter() - t
    steps = cfg.num_updates() * cfg.steps_per_update() * seeds
    return {"steps": steps, "seconds": dt, "steps_per_s": steps / dt,
            "returns": [ring_mean(fs, i) for i in range(seeds)]}


def bench_one_after_another(cfg, seeds: int) -> dict:
    import jax

    from srljax.dataflow.fused.rollout import FusedTrainer

    trainer = FusedTrainer(cfg)
    trainer.chunk(trainer.init(cfg.seed), 0)                 # compiles once for every seed
    total, returns = 0.0, []
    for i in range(seeds):
        fs = trainer.init(cfg.seed + i)
        jax.block_until_ready(fs)
        t = time.perf_counter()
        fs, _ = trainer.chunk(fs, cfg.num_updates())
        jax.block_until_ready(fs.env_steps)
        total += time.perf_counter() - t
        returns.append(trainer.last_returns(fs))
    steps = cfg.num_updates() * cfg.steps_per_update() * seeds
    return {"steps": steps, "seconds": total, "steps_per_s": steps / total, "returns": returns}


def bench_purejaxrl(python: str, script: str, num_envs: int, seeds: int) -> dict:
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run([python, script, "1", str(num_envs), str(seeds)], capture_output=True, text=True, env=env,
                         timeout=3600)
    if out.returncode != 0:
        raise RuntimeError(f"the PureJaxRL peer failed:\n{out.stderr[-2000:]}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="cartpole_purejaxrl", help="a fused-mode named config (PPO or V-trace)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--seeds", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    p.add_argument("--purejaxrl", metavar="PYTHON", help="python of a venv with PureJaxRL's dependencies")
    p.add_argument("--peer-script", default=str(PEER))
    p.add_argument("--no-sequential", action="store_true", help="skip the N single runs one after the other")
    p.add_argument("--out", help="write the JSON here too")
    args = p.parse_args(argv)

    from srljax import config as C
    from srljax import presets, process
    cfg = C.override(presets.get(args.config), C.parse_set(args.set))
    process.prepare_fused_backend(cfg)
    cfg = C.validate(cfg)
    rounds = []
    for r in range(args.rounds):
        row = {"population": bench_population(cfg, args.seeds)}
        if not args.no_sequential:
            row["one_after_another"] = bench_one_after_another(cfg, args.seeds)
        if args.purejaxrl:
            row["purejaxrl"] = bench_purejaxrl(args.purejaxrl, args.peer_script, cfg.env.num_envs, args.seeds)
        rounds.append(row)
        print(f"round {r + 1}: " + "; ".join(
            f"{k} {v['steps_per_s']:,.0f} steps/s" for k, v in row.items()), file=sys.stderr, flush=True)
    out = {"config": args.config, "seeds": args.seeds, "rounds": rounds}
    pop = [r["population"]["steps_per_s"] for r in rounds]
    out["population_steps_per_s_median"] = statistics.median(pop)
    for other in ("one_after_another", "purejaxrl"):
        if other in rounds[0]:
            ratios = [r["population"]["steps_per_s"] / r[other]["steps_per_s"] for r in rounds]
            out[f"ratio_vs_{other}_median"] = statistics.median(ratios)
            out[f"ratio_vs_{other}"] = ratios
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
