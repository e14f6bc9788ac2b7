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
    """`num_envs` copies of a CPU simulator stepped together in numpy, with auto-reset (the module's
    docstring has the whole contract)."""

    num_envs: int
    num_agents: Optional[int]          # None for single-agent envs
    observation_space: Any             # a Box, or a dict of Boxes for dict observations
    action_space: Space                # per agent

    def reset(self, seed: int) -> Any:
        """Start every env; the observations [num_envs, (num_agents,) ...] (an array or a dict of arrays).

        Args:
            seed: seeds the envs (each copy its own stream).
        """
        ...

    def step(self, actions: np.ndarray) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """One step of every env: `(obs, reward, terminated, truncated, info)`, envs whose episode
        ended reset at once (`info["final_obs"]`, `info["episodes"]`).

        Args:
            actions: [num_envs, (num_agents,) ...] in `action_space`.
        """
        ...

    def close(self) -> None:
        """Release the simulators."""
        ...


class MultiAgentVectorEnv(VectorEnv, Protocol):
    """What a multi-agent CPU vector env tells the dataflow (every member optional but `num_agents`).

    - `teams()`: [num_envs, num_agents] team index (0, 1, ...) of each agent slot in the current
      episodes, -1 for an empty slot; games without teams leave it out. Two-team games can then
      play a random-action opponent team (`distributed.random_opponents`).
    - `presence_key`: the observation key that is 1 for the agent slots in play, for games whose
      number of agents varies (empty slots hold zeros and are not learned from); for array
      observations [num_envs, num_agents, D], an int: the column of the last axis that holds it.
    - `episode_stats`: extra per-episode statistics the env puts in `info["episodes"]`, mapped to
      the name each one's mean has in the metrics lines; an episode with `unstable` set (a
      simulator blow-up) is left out of those means.
    - `plot_episode_stats(run_dir)`: draws them from the run's metrics.jsonl (a static method).
    """

    num_agents: int
    presence_key: Optional[str | int]
    episode_stats: Dict[str, str]

    def teams(self) -> np.ndarray: ...

    @staticmethod
    def plot_episode_stats(run_dir: Any) -> Any: ...


def has_teams(env) -> bool:
    return callable(getattr(env, "teams", None))


def presence_key(env) -> Optional[str]:
    return getattr(env, "presence_key", None)


def episode_stats(env) -> Dict[str, str]:
    return dict(getattr(env, "episode_stats", None) or {})


def episode_plot(env):
    """The env's `plot_episode_stats(run_dir)`, or None."""
    return getattr(env, "plot_episode_stats", None)
