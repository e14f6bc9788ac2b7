"""A CartPole whose second instance in a process (the first is distributed mode's probe of the
spaces; the second is actor 0's env 0) goes bad every 150 steps: a NaN observation, then an
infinite reward, alternately (for the env guard tests)."""
import itertools

import gymnasium
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

_instances = itertools.count()


class NanCartPole(CartPoleEnv):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bad = next(_instances) == 1
        self.steps = 0

    def step(self, action):
        obs, reward, term, trunc, info = super().step(action)
        self.steps += 1
        if self.bad and self.steps % 150 == 0:
            if (self.steps // 150) % 2:
                obs = np.full_like(obs, np.nan)
            else:
                reward = float("inf")
        return obs, reward, term, trunc, info


gymnasium.register("NanCartPole-v0", entry_point=NanCartPole, max_episode_steps=500)
