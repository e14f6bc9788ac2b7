#!/usr/bin/env python
"""Fused-mode PPO throughput: env steps per second, compile time excluded.

Runs srljax's fused PPO and, in the same process, a reference: a minimal single-function PPO in
PureJaxRL's structure (the whole run one jitted `lax.scan` over updates, gymnax's own auto-reset,
value computed in the rollout), with the same hyperparameters. Each is compiled first, then timed
`--repeats` times, alternating; the best time of each is reported with the final return.

    python scripts/bench_train.py                       # CartPole, PureJaxRL's settings
    python scripts/bench_train.py --config cartpole --out bench_train.json
    python scripts/bench_train.py --no-reference --purejaxrl V/bin/python --rounds 3   # beside PureJaxRL itself

With `--purejaxrl`, PureJaxRL's own `ppo.py` (the peer script in ../shared/peers, run by the
python of its own venv) is timed in alternating rounds with srljax in the same sitting, with the
same env count (`--set env.num_envs=N` applies to both), and the median ratio is reported.
With `--baseline DIR` (another srljax checkout, e.g. `git worktree add /tmp/before HEAD~1`), that
checkout's own bench_train.py runs in each round too, so a change is measured side by side with
the code before it:

    python scripts/bench_train.py --no-reference --purejaxrl V/bin/python --baseline /tmp/before --rounds 3
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "purejaxrl_cartpole.py"


def bench_purejaxrl(python: str, script: str, repeats: int, num_envs: int) -> dict:
    """PureJaxRL's own ppo.py (the peer script, in its own venv) as a subprocess: its JSON line."""
    import subprocess
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    out = subprocess.run([python, script, str(repeats), str(num_envs)], capture_output=True, text=True, env=env,
                         timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"the PureJaxRL peer failed:\n{out.stderr[-2000:]}")
    return json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])


def bench_baseline(checkout: str, args) -> dict:
    """Another srljax checkout's bench_train.py (same config, overrides, repeats) as a subprocess."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "baseline.json"
        cmd = [sys.executable, str(Path(checkout) / "scripts" / "bench_train.py"), "--no-reference",
               "--config", args.config, "--repeats", str(args.repeats), "--out", str(out)]
        for s in args.set:
            cmd += ["--set", s]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=checkout, timeout=1800)
        if res.returncode != 0:
            raise RuntimeError(f"the baseline checkout's bench failed:\n{res.stderr[-2000:]}")
        return json.loads(out.read_text())["srljax"]


def bench_srljax(cfg, repeats):
    import jax
    import numpy as np

    from srljax.dataflow.fused.rollout import FusedTrainer

    trainer = FusedTrainer(cfg)
    n_updates = cfg.num_updates()
    t = time.perf_counter()
    fs0 = trainer.init(cfg.seed)
    trainer.chunk(fs0, 0)  # compiles (a while_loop with a run-time trip count: no work done)
    compile_s = time.perf_counter() - t
    times, ret = [], None
    for _ in range(repeats):
        fs = trainer.init(cfg.seed)
        jax.block_until_ready(fs)
        t = time.perf_counter()
        fs, m = trainer.chunk(fs, n_updates)
        jax.block_until_ready(fs.env_steps)
        times.append(time.perf_counter() - t)
        ret = trainer.last_returns(fs)
    steps = n_updates * cfg.steps_per_update()
    return {"steps": steps, "best_s": min(times), "times_s": times, "compile_s": compile_s,
            "steps_per_s": steps / min(times), "final_return": ret}


def bench_reference(cfg, repeats):
    import jax

    from reference_ppo import make_reference_train

    run = jax.jit(make_reference_train(cfg))
    key = jax.random.PRNGKey(cfg.seed)
    t = time.perf_counter()
    run = run.lower(key).compile()
    compile_s = time.perf_counter() - t
    times, ret = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = jax.block_until_ready(run(key))
        times.append(time.perf_counter() - t)
        ret = float(out)
    steps = cfg.num_updates() * cfg.steps_per_update()
    return {"steps": steps, "best_s": min(times), "times_s": times, "compile_s": compile_s,
            "steps_per_s": steps / min(times), "final_return": ret}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="cartpole_purejaxrl", help="a fused-mode named config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each, alternating")
    p.add_argument("--no-reference", action="store_true", help="skip the reference PPO")
    p.add_argument("--out", help="write the results as JSON here")
    p.add_argument("--purejaxrl", metavar="PYTHON", help="python of a venv with PureJaxRL's dependencies: run "
                   "PureJaxRL's own ppo.py (the peer script) alternating with srljax, --rounds times")
    p.add_argument("--peer-script", default=str(PEER), help="the PureJaxRL peer script")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds with --purejaxrl")
    p.add_argument("--baseline", metavar="DIR", help="another srljax checkout: its bench runs in every round too")
    args = p.parse_args(argv)

    from srljax import config as C
    from srljax import presets, process
    from srljax.errors import UserError
    from srljax.run import check

    try:
        cfg = C.override(presets.get(args.config), C.parse_set(args.set))
        process.prepare_fused_backend(cfg)      # as scripts/train.py: the size of XLA's CPU pool
        cfg = check(cfg)
        if cfg.mode != "fused":
            raise UserError(f"bench_train measures fused mode; {args.config} is {cfg.mode}")
        if args.repeats < 1:
            raise UserError("--repeats must be >= 1")
        if args.baseline and not (Path(args.baseline) / "scripts" / "bench_train.py").is_file():
            raise UserError(f"--baseline {args.baseline}: no scripts/bench_train.py there (a srljax checkout)")
        if args.baseline and not args.purejaxrl:
            raise UserError("--baseline runs in the rounds of --purejaxrl; give both")
    except UserError as e:
        print(f"bench_train: error: {e}", file=sys.stderr)
        return 2
    import jax

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    results = {"config": cfg.name, "env": cfg.env.id, "num_envs": cfg.env.num_envs,
               "rollout_len": cfg.rollout.rollout_len, "epochs": cfg.ppo.epochs, "minibatches": cfg.ppo.minibatches,
               "total_env_steps": cfg.num_updates() * cfg.steps_per_update(),
               "device": str(jax.devices()[0]), "devices": jax.local_device_count(),
               "cpu_count": os.cpu_count()}
    results["srljax"] = bench_srljax(cfg, args.repeats)
    if not args.no_reference and cfg.env.id.startswith("gymnax/") and cfg.network.activation == "tanh":
        results["reference"] = bench_reference(cfg, args.repeats)
    s = results["srljax"]
    print(f"{'system':<34} {'env steps/s':>12} {'compile s':>10} {'final return':>13}")
    print(f"{'srljax fused PPO':<34} {s['steps_per_s']:>12,.0f} {s['compile_s']:>10.1f} {s['final_return']:>13.1f}")
    if "reference" in results:
        r = results["reference"]
        print(f"{'reference PPO (PureJaxRL structure)':<34} {r['steps_per_s']:>12,.0f} {r['compile_s']:>10.1f} "
              f"{r['final_return']:>13.1f}")
        results["ratio_vs_reference"] = s["steps_per_s"] / r["steps_per_s"]
        print(f"srljax / reference: {results['ratio_vs_reference']:.2f}x")
    if args.purejaxrl:
        rounds = []
        for k in range(args.rounds):           # alternating, in one sitting: srljax, PureJaxRL, srljax, ...
            mine = results["srljax"] if k == 0 else bench_srljax(cfg, args.repeats)
            base = bench_baseline(args.baseline, args) if args.baseline else None
            peer = bench_purejaxrl(args.purejaxrl, args.peer_script, args.repeats, cfg.env.num_envs)
            rounds.append({"srljax": mine["steps_per_s"], "srljax_return": mine["final_return"],
                           "purejaxrl": peer["steps_per_s"], "purejaxrl_return": peer["final_return"],
                           "ratio": mine["steps_per_s"] / peer["steps_per_s"]})
            r = rounds[-1]
            line = (f"round {k + 1}: srljax {r['srljax']:,.0f} (return {r['srljax_return']:.0f}), PureJaxRL "
                    f"{r['purejaxrl']:,.0f} (return {r['purejaxrl_return']:.0f}): {r['ratio']:.2f}x")
            if base is not None:
                r.update(baseline=base["steps_per_s"], baseline_return=base["final_return"],
                         vs_baseline=mine["steps_per_s"] / base["steps_per_s"])
                line += f"; baseline {r['baseline']:,.0f} (return {r['baseline_return']:.0f}): {r['vs_baseline']:.2f}x"
            print(line, flush=True)
        ratios = sorted(r["ratio"] for r in rounds)
        results["purejaxrl_rounds"] = rounds
        results["ratio_vs_purejaxrl_median"] = ratios[len(ratios) // 2]
        print(f"srljax / PureJaxRL, median of {len(rounds)} alternating rounds: "
              f"{results['ratio_vs_purejaxrl_median']:.2f}x")
        if args.baseline:
            vs = sorted(r["vs_baseline"] for r in rounds)
            results["ratio_vs_baseline_median"] = vs[len(vs) // 2]
            print(f"srljax / baseline checkout, median of {len(rounds)} rounds: {vs[len(vs) // 2]:.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
