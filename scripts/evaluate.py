#!/usr/bin/env python
"""Play a run's checkpoint: the `srljax-evaluate` command (`srljax.evaluate`, which documents the flags).

    python scripts/evaluate.py --run-dir runs/cartpole --episodes 20 --video cartpole.gif
    python scripts/evaluate.py --run-dir runs/hns_q --episodes 200
    python scripts/evaluate.py --run-dir runs/hns_q --matchup seekers --episodes 50 --gif docs/hns_trained.gif
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srljax.evaluate import main  # noqa: E402
from srljax.process import single_threaded  # noqa: E402

if __name__ == "__main__":
    single_threaded(cpu_only=False)      # before jax starts
    sys.exit(main())
