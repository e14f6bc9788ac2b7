"""A population on XLA's own multi-thread CPU pool (a notebook that imported jax first): 8 members
initialise and train instead of stalling (`fused.loop.map_members`: batched over members, the
orthogonal initialisers' QR split over the pool and waited on its own threads, forever)."""
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import faulthandler, os
faulthandler.dump_traceback_later(150, exit=True)   # a stall: the stacks, then exit 1
import jax
jax.devices()                                       # the backend starts first: XLA's own pool
import srljax
from srljax import config, presets
from srljax.dataflow.fused.rollout import FusedTrainer

trainer = FusedTrainer(config.override(presets.get("cartpole"), {"seeds": 8}))
for seed in range(3):                               # the stall was in the init program
    jax.block_until_ready(trainer.init(seed))
result = srljax.train("cartpole", seeds=8, overrides={"env.num_envs": 4, "rollout.rollout_len": 32,
                                                      "total_env_steps": 256, "log_every_env_steps": 128})
print("members", len(result.summary["episode_return_members"]))
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="XLA's own pool has one thread on one core: nothing to stall")
def test_a_population_of_8_runs_on_xlas_own_multi_thread_pool(subprocess_env):
    env = {k: v for k, v in subprocess_env.items() if k != "XLA_FLAGS"}     # as a notebook has it
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=200)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "members 8"
