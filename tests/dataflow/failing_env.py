"""A CartPole that raises after a few steps in one chosen MPI rank (for the failure test)."""
import os
import sys
import time

import gymnasium
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class FailingCartPole(CartPoleEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.steps = 0
        self.fail = os.environ.get("PMI_RANK") == os.environ.get("SRLJAX_TEST_FAIL_RANK")

    def step(self, action):
        self.steps += 1
        if self.fail and self.steps == 200:
            print(f"FAILING_AT {time.time():.3f}", file=sys.stderr, flush=True)
            raise RuntimeError("injected actor failure")
        return super().step(action)


gymnasium.register("FailingCartPole-v0", entry_point=FailingCartPole, max_episode_steps=500)
