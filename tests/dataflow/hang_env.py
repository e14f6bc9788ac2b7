"""A CartPole that hangs for ever in one chosen MPI rank (liveness tests).

`SRLJAX_TEST_HANG_RANK`: the rank whose envs hang (PMI_RANK); `SRLJAX_TEST_HANG_AT`: the step of
each env at which its `step` never returns (default 400); `SRLJAX_TEST_HANG_IN=close`: `step`
works and `close` of an env that has stepped never returns instead (a rank that hangs during the
end of the run, after it has said FIN).
"""
import os
import sys
import time

import gymnasium
from gymnasium.envs.classic_control.cartpole import CartPoleEnv


def _hang(where: str) -> None:
    print(f"HANGING_AT {time.time():.3f} in {where}", file=sys.stderr, flush=True)
    while True:
        time.sleep(1.0)


class HangingCartPole(CartPoleEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.steps = 0
        self.hang = os.environ.get("PMI_RANK") == os.environ.get("SRLJAX_TEST_HANG_RANK")
        self.hang_at = int(os.environ.get("SRLJAX_TEST_HANG_AT", "400"))
        self.in_close = os.environ.get("SRLJAX_TEST_HANG_IN") == "close"

    def step(self, action):
        self.steps += 1
        if self.hang and not self.in_close and self.steps == self.hang_at:
            _hang("step")
        return super().step(action)

    def close(self):
        if self.hang and self.in_close and self.steps:       # not the envs probed at start-up
            _hang("close")
        super().close()


gymnasium.register("HangingCartPole-v0", entry_point=HangingCartPole, max_episode_steps=500)
