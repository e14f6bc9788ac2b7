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
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    log_rank = launch.under_mpirun() is False or _rank() == 0
    try:
        cfg = resolve_config(args.config, args.set, args.seed)
        logger = None
        if log_rank:
            from srljax import config as C
            from srljax.runlog import RunLogger, prepare_run_dir, write_json
            run_dir = None
            if args.run_dir:
                run_dir = prepare_run_dir(args.run_dir, overwrite=args.overwrite)
                write_json(run_dir / "config.json", C.to_dict(cfg))
            logger = RunLogger(run_dir, cfg.total_env_steps, quiet=args.quiet)
        from srljax.dataflow.distributed import run_distributed
        summary = run_distributed(cfg, args.run_dir, logger)
    except UserError as exc:
        if log_rank:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    if summary is not None:
        print(json.dumps(summary))
    return 0


def _rank() -> int:
    import os
    return int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")))


if __name__ == "__main__":
    sys.exit(main())
