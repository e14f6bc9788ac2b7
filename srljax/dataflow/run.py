"""Distributed-mode entry point (what `scripts/train.py` does for `mode=distributed`).

    mpirun -n 4 python -m srljax.dataflow.run --config gym_cartpole [--set KEY=VALUE ...] [--run-dir DIR]
    python -m srljax.dataflow.run --config gym_cartpole          # the same workers in one process

Exit codes: 0 done, 2 bad input (one line on stderr, from rank 0 only), 1 failure at run time
(`srljax: rank R (role) failed: ...` on stderr, and every rank ends).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from srljax.dataflow import launch

launch.configure_process()     # before anything imports jax

from srljax.errors import UserError  # noqa: E402


def resolve_config(name: str, sets, seed=None):
    from srljax import config as C
    from srljax.dataflow.presets import DISTRIBUTED_PRESETS

    if name in C.PRESETS:
        cfg = C.PRESETS[name]
    elif name in DISTRIBUTED_PRESETS:
        description, fields = DISTRIBUTED_PRESETS[name]
        cfg = C.override(C.Config(name=name, description=description), fields)
    else:
        names = sorted(set(C.PRESETS) | set(DISTRIBUTED_PRESETS))
        raise UserError(f"unknown config {name!r}; named configs: {', '.join(names)}")
    cfg = C.override(cfg, C.parse_set(sets))
    if seed is not None:
        cfg = C.override(cfg, {"seed": seed})
    if cfg.mode != "distributed":
        cfg = C.override(cfg, {"mode": "distributed"})
    return C.validate(cfg)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="srljax distributed mode")
    parser.add_argument("--config", default="gym_cartpole")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from srljax.dataflow.distributed import is_log_rank, main as distributed_main
    try:
        cfg = resolve_config(args.config, args.set, args.seed)
        if args.run_dir is None:        # this entry point writes no run directory unless asked
            from srljax.dataflow.distributed import run_distributed
            from srljax.runlog import RunLogger
            logger = RunLogger(None, cfg.total_env_steps, quiet=args.quiet) if is_log_rank() else None
            summary = run_distributed(cfg, None, logger)
            if summary is not None:
                print(json.dumps(summary))
            return 0
        code = distributed_main(cfg, args)
        if is_log_rank():
            print((Path(args.run_dir) / "summary.json").read_text().replace("\n", " "))
        return code
    except UserError as exc:
        if is_log_rank():
            print(f"srljax: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
