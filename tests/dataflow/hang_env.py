"""A CartPole whose `step` never returns after a few steps in one chosen MPI rank (liveness test)."""
import os
import sys
import time

import gymnasium
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


class HangingCartPole(CartPoleEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.steps = 0
        self.hang = os.environ.get("PMI_RANK") == os.environ.get("SRLJAX_TEST_HANG_RANK")

    def step(self, action):
        self.steps += 1
        if self.hang and self.steps == 400:
            print(f"HANGING_AT {time.time():.3f}", file=sys.stderr, flush=True)
            while True:
                time.sleep(1.0)
        return super().step(action)


gymnasium.register("HangingCartPole-v0", entry_point=HangingCartPole, max_episode_steps=500)
