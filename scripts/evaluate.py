#!/usr/bin/env python
"""Play a hide-and-seek checkpoint against itself or against random-action opponents: the
`srljax-evaluate` command (`srljax.evaluate`, which documents the flags).

    python scripts/evaluate.py --run-dir runs/hns_q --episodes 200
    python scripts/evaluate.py --run-dir runs/hns_q --matchup seekers --episodes 50 --gif docs/hns_trained.gif
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srljax.evaluate import (MATCHUPS, STATS, Player, example_batch, latest_checkpoint,  # noqa: E402,F401
                             load_policy, main, make_act, play, record_actions)

if __name__ == "__main__":
    sys.exit(main())
