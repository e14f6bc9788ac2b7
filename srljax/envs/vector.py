"""The CPU vector-env interface (distributed mode).

A CPU vector env steps `num_envs` copies of a simulator in numpy. Arrays carry a leading env axis,
and, for multi-agent games, an agent axis after it:

    obs = env.reset(seed)                       # array or dict of arrays [num_envs, (num_agents,) ...]
    obs, reward, terminated, truncated, info = env.step(actions)
        # reward, terminated, truncated: [num_envs] or [num_envs, num_agents]

Auto-reset: when an env's episode ends (terminated or truncated), `step` resets it and returns the
first observation of the new episode; the last observation of the old one is in
`info["final_obs"]` (same structure and shape as `obs`; rows of envs that did not end hold the
current observation). `info["episodes"]` is a list with one dict per episode that ended in this
step: at least `return` (float; for multi-agent games the mean over agents, plus per-team figures
where the game has teams) and `length` (int), plus any per-episode statistics of the env.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Protocol, Tuple

import numpy as np

from srljax.envs.spaces import Space


class VectorEnv(Protocol):
    num_envs: int
    num_agents: Optional[int]          # None for single-agent envs
    observation_space: Any             # a Box, or a dict of Boxes for dict observations
    action_space: Space                # per agent

    def reset(self, seed: int) -> Any: ...

    def step(self, actions: np.ndarray) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]: ...

    def close(self) -> None: ...
