#!/usr/bin/env python
"""Train an agent: `python scripts/train.py --config NAME [--set KEY=VALUE ...] [--run-dir DIR]`.

Fused mode (JAX envs) runs in this process; distributed mode (CPU envs) runs under
`mpirun -n N python scripts/train.py ...` or, without mpirun, in one process with in-process
streams. Exit codes: 0 done, 2 bad input (one line on stderr), 1 failure at run time.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srljax.dataflow.launch import configure_process, enable_compile_cache, under_mpirun  # noqa: E402
from srljax.errors import RunError, UserError  # noqa: E402

# Before anything imports jax: under mpirun, single-threaded ranks; always, the compile cache.
if under_mpirun():
    configure_process()
else:
    enable_compile_cache()


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(f"{message} (see --help)")


def parse_args(argv):
    p = _Parser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="cartpole", help="named config (see --list-configs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field by dotted path; VALUE is JSON or a string (repeatable)")
    p.add_argument("--run-dir", help="output directory (default runs/CONFIG-SEED-TIME)")
    p.add_argument("--seed", type=int, help="random seed (same as --set seed=N)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --run-dir")
    p.add_argument("--list-configs", action="store_true", help="print the named configs and exit")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p.parse_args(argv)


def resolve_config(args):
    from srljax import config as C
    from srljax.runlog import read_json_if_exists

    if args.resume:
        if not args.run_dir:
            raise UserError("--resume needs --run-dir DIR of the run to continue")
        saved = read_json_if_exists(Path(args.run_dir) / "config.json")
        if saved is None:
            raise UserError(f"--resume: {args.run_dir} holds no run (no config.json)")
        cfg = C.from_dict(saved)
    else:
        cfg = C.get(args.config)
    overrides = C.parse_set(args.set)
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = C.override(cfg, overrides)
    return C.validate(cfg)


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from srljax import config as C

    if args.list_configs:
        print(C.list_configs())
        return 0
    cfg = resolve_config(args)
    if cfg.mode == "distributed":
        from srljax.dataflow.distributed import main as distributed_main
        return distributed_main(cfg, args)
    return run_fused(cfg, args)


def run_fused(cfg, args) -> int:
    from srljax import config as C
    from srljax.checkpoint import Checkpointer
    from srljax.runlog import RunLogger, prepare_run_dir, write_json

    run_dir = args.run_dir or f"runs/{cfg.name}-{cfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = prepare_run_dir(run_dir, overwrite=args.overwrite, resume=args.resume)
    ckpt = Checkpointer(path, keep=cfg.keep_checkpoints)
    latest = ckpt.latest() if args.resume else None
    if args.resume and latest is None:
        raise UserError(f"--resume: {path} has no checkpoint to resume from")
    state_dict, header = ckpt.restore(latest) if latest is not None else (None, {})  # corrupt: UserError now

    write_json(path / "config.json", C.to_dict(cfg))
    from srljax.dataflow import fused

    resume_at = header.get("meta", {}).get("env_steps") if args.resume else None
    logger = RunLogger(path, cfg.total_env_steps, quiet=args.quiet, resume_at=resume_at)
    if latest is not None:
        print(f"resuming from {latest}", file=sys.stderr)
    _, fs, summary = fused.train(cfg, logger=logger, checkpointer=ckpt, resume_from=state_dict)
    summary = logger.finish({**summary, "config": cfg.name, "env": cfg.env.id, "seed": cfg.seed,
                             "num_envs": cfg.env.num_envs, "total_env_steps": cfg.total_env_steps})
    if not args.quiet:
        ret = summary["episode_return"]
        print(f"done: {summary['env_steps']:,} env steps in {summary['wall_s']:.1f}s "
              f"({summary['steps_per_s']:,.0f} steps/s after compile), episode_return "
              f"{'n/a' if ret is None else f'{ret:.1f}'}; run directory {path}", file=sys.stderr)
    return 0


def cli() -> int:
    try:
        return main()
    except UserError as e:
        if os.environ.get("PMI_RANK", "0") == "0":  # under mpirun every rank fails alike; one says so
            print(f"srljax: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"srljax: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("srljax: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
