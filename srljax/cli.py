"""The command line: `python scripts/train.py`, `python -m srljax` (same flags).

    python -m srljax --config NAME [--set KEY=VALUE ...] [--run-dir DIR] [--seed N] [--seeds N] [--resume] [--overwrite]
    mpirun -n 4 python -m srljax --config gym_cartpole

Exit codes: 0 done, 2 bad input (one line on stderr, from rank 0 only under mpirun), 1 failure at
run time, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from srljax import process
from srljax.errors import Interrupted, RunError, UserError, WriteError, interrupt_code


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UserError(f"{message} (see --help)")


def parse_args(argv):
    p = _Parser(prog="srljax", description="Train an agent (fused mode in this process; distributed mode under "
                "mpirun, or in one process without it).", epilog=config_help(),
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="cartpole", help="named config (see --list-configs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field by dotted path (repeatable; the fields are listed below)")
    p.add_argument("--run-dir", help="output directory (default runs/CONFIG-SEED-TIME)")
    p.add_argument("--no-run-dir", action="store_true", help="write no run directory (benchmarks, smoke tests)")
    p.add_argument("--seed", type=int, help="random seed (same as --set seed=N)")
    p.add_argument("--seeds", type=int, help="fused mode: N runs in one program, seeds SEED..SEED+N-1 (same as --set seeds=N)")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="fused mode: a float setting's values, run in the same program (repeatable: every "
                        "combination, times --seeds)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --run-dir")
    p.add_argument("--list-configs", action="store_true", help="print the named configs and exit")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--print-summary", action="store_true", help="print summary.json's contents on stdout at the end")
    return p.parse_args(argv)


def config_help(width: int = 96) -> str:
    """--help's list of every config field: dotted key, type, default and docstring (srljax.config)."""
    from srljax.config import describe_fields

    def show(v):
        try:
            return json.dumps(v)
        except TypeError:
            return repr(v)

    fields = describe_fields()
    lines = ["config fields, for --set KEY=VALUE: a string field takes VALUE as it is (--set description=2024),",
             "a boolean true/false/True/False/1/0, any other VALUE is JSON (numbers, [lists], {dicts}, null);",
             "KEY is the dotted path (--set ppo.lr=1e-3 --set network.hidden=[32,32] --set ppo.anneal_lr=false)."]
    top = [f for f in fields if "." not in f["key"] and not f["section"]]
    for f in top + [f for f in fields if f not in top]:
        if f["section"]:
            lines += ["", f"{f['key']}.*: {f['doc']}"]
            continue
        lines.append(f"  {f['key']} ({f['type']}, default {show(f['default'])})")
        lines += textwrap.wrap(f["doc"], width, initial_indent=" " * 6, subsequent_indent=" " * 6, break_on_hyphens=False)
    return "\n".join(lines)


def parse_sweep(items) -> dict:
    """`--sweep KEY=V1,V2,...` strings -> {KEY: [numbers]} (`config.check_sweep` checks the keys)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        try:
            values = [float(v) for v in raw.split(",")] if sep and raw else None
        except ValueError:
            values = None
        if not values:
            raise UserError(f"--sweep expects KEY=V1,V2,... with numbers, got {item!r}")
        if key in out:
            raise UserError(f"--sweep {key} given twice")
        out[key] = values
    return out


def resolve_config(args):
    """The preset (or, with --resume, the run's own config.json), with --set and --seed applied."""
    from srljax import config as C
    from srljax import presets
    from srljax.run import check
    from srljax.runlog import read_json_if_exists

    if args.resume:
        if not args.run_dir:
            raise UserError("--resume needs --run-dir DIR of the run to continue")
        path = Path(args.run_dir) / "config.json"
        if not path.is_file():
            raise UserError(f"--resume: {args.run_dir} holds no run (no config.json)")
        saved = read_json_if_exists(path)
        try:
            cfg = C.from_dict(saved)
        except UserError as e:
            raise UserError(f"{path}: {e}") from None
    else:
        cfg = presets.get(args.config)
    overrides = C.parse_set(args.set)
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.seeds is not None:
        overrides["seeds"] = args.seeds
    if args.sweep:
        overrides["sweep"] = parse_sweep(args.sweep)
    cfg = C.override(cfg, overrides)
    process.prepare_fused_backend(cfg)      # before check() starts jax: the size of its CPU pool
    return check(cfg)


def setup_process() -> None:
    """Before jax is imported: under mpirun single-threaded ranks, a supervisor and the abort
    hook; always the compile cache."""
    if process.under_mpirun():
        from srljax.dataflow.launch.process import configure_process
        configure_process()
    else:
        process.enable_compile_cache()


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list_configs:
        from srljax import presets
        print(presets.list_configs())
        return 0
    from srljax.run import default_run_dir, run
    cfg = resolve_config(args)
    if args.no_run_dir and (args.run_dir or args.resume):
        raise UserError("--no-run-dir cannot be combined with --run-dir or --resume")
    run_dir = None if args.no_run_dir else args.run_dir or default_run_dir(cfg)
    result = run(cfg, run_dir=run_dir, resume=args.resume, overwrite=args.overwrite, quiet=args.quiet)
    if args.print_summary and result.summary is not None:
        print(json.dumps(result.summary))
    return 0


def cli(argv=None) -> int:
    """`main` with errors turned into exit codes and one line each."""
    setup_process()
    if not process.under_mpirun():             # (under mpirun each rank's set-up did it)
        from srljax.dataflow.launch import supervisor
        supervisor.terminate_as_interrupt(deferred=True)   # Ctrl-C/SIGTERM: save, one line, 128 + N
    try:
        return main(argv)
    except UserError as e:
        if process.is_lead():     # under mpirun every rank fails alike; one says so
            print(f"srljax: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        kind = "" if isinstance(e, WriteError) else f"{type(e).__name__}: "     # "could not write PATH: cause"
        print(f"srljax: error: {kind}{e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        how = f"terminated ({e.name})" if isinstance(e, Interrupted) else "interrupted"
        print(f"srljax: {how}", file=sys.stderr)
        return interrupt_code(e)
