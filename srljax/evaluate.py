"""The `srljax-evaluate` command: play a run's checkpoint and print what it scores, as JSON.

    srljax-evaluate --run-dir runs/cartpole --episodes 20 --video cartpole.gif    (or python scripts/evaluate.py ...)
    srljax-evaluate --run-dir runs/hns_q --episodes 200
    srljax-evaluate --run-dir runs/hns_q --matchup seekers --episodes 50 --gif docs/hns_trained.gif

Any env family: the mean return over --episodes and, with --video, a GIF (`srljax.playback`).
Hide-and-seek (`hns/` and `hns_jax/` envs): matchups of the trained teams against random-action
opponents and the stage statistics (`srljax.matchup`, which explains them). The checkpoint is the latest in
RUN_DIR/checkpoints (or --checkpoint PATH); the config is RUN_DIR/config.json.
Exit codes: 0 done, 2 bad input, 1 failure.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from srljax.errors import UserError
from srljax.matchup import MATCHUPS


def main(argv=None, prog: str = "evaluate.py") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", required=True, help="a training run directory (config.json, checkpoints/)")
    p.add_argument("--checkpoint", help="a checkpoint file (default: the run's latest)")
    p.add_argument("--fresh", action="store_true", help="freshly initialised weights instead of a checkpoint")
    p.add_argument("--matchup", default="all", choices=("all",) + MATCHUPS)
    p.add_argument("--episodes", type=int, default=200, help="episodes per matchup (K)")
    p.add_argument("--num-envs", type=int, default=20, help="games stepped together")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--greedy", action="store_true", help="most likely actions instead of sampling")
    p.add_argument("--gif", help="write a GIF of env 0's first episode of the first matchup played")
    p.add_argument("--horizon", type=int, help="episode length override (short checks)")
    p.add_argument("--sim-alone", type=int, metavar="P", default=0,
                   help="also time the simulator alone in P processes at once (no policy, no learning), "
                        "replaying this checkpoint's own self-play actions and uniformly random ones: the "
                        "yardstick for a training run's throughput on the same cores")
    p.add_argument("--sim-steps", type=int, default=800, help="steps per process for --sim-alone")
    p.add_argument("--out", help="also write the JSON here")
    p.add_argument("--member", type=int, help="a population run (--seeds N): the member to play (default: the best)")
    p.add_argument("--video", help="any env but hide-and-seek: write a GIF of env 0's first episode here")
    args = p.parse_args(argv)
    try:
        from srljax import config as C
        for target in (args.out, args.gif, args.video):
            if target:
                _check_writable(Path(target))
        run_dir = Path(args.run_dir)
        if not (run_dir / "config.json").is_file():
            raise UserError(f"{run_dir} holds no run (no config.json)")
        cfg = C.from_dict(json.loads((run_dir / "config.json").read_text()))
        if args.horizon is not None:
            cfg = C.override(cfg, {"env.kwargs": {**cfg.env.kwargs, "horizon": args.horizon}})
        if cfg.env.id.startswith(("hns/", "hns_jax/")):
            from srljax.matchup import evaluate_matchups
            ckpt = None if args.fresh else (Path(args.checkpoint) if args.checkpoint else latest_checkpoint(run_dir))
            result = {"run_dir": str(run_dir), **evaluate_matchups(cfg, args, ckpt)}
        else:
            from srljax import playback
            if args.episodes < 1:
                raise UserError("--episodes must be >= 1")
            ckpt = Path(args.checkpoint) if args.checkpoint else latest_checkpoint(run_dir)
            result = playback.play_checkpoint(cfg, ckpt, args.episodes, args.seed, args.video, args.member)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


def latest_checkpoint(run_dir: Path) -> Path:
    """The run's newest checkpoint file; a UserError when it has none."""
    from srljax.checkpoint import Checkpointer
    found = Checkpointer(run_dir).latest()
    if found is None:
        raise UserError(f"{run_dir} has no checkpoints (expected {run_dir}/checkpoints/ckpt_*.msgpack)")
    return found


def _check_writable(path: Path) -> None:
    """Refuse an output path before the evaluation runs, not after."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UserError(f"cannot write {path}: {'a directory' if path.is_dir() else 'no writable directory ' + str(parent)}")


def cli() -> int:
    """The `srljax-evaluate` console script."""
    from srljax.process import single_threaded
    single_threaded(cpu_only=False)          # before jax starts; evaluation may run on an accelerator
    return main(prog="srljax-evaluate")


if __name__ == "__main__":
    sys.exit(cli())
