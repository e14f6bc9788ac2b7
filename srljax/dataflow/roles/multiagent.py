"""Multi-agent, dict-observation and recurrent games on the dataflow's fixed-layout messages.

The streams carry one float32 observation array per message field. A dict observation ([E, A, ...]
per key) is packed into one row per agent, `[E, A, D]`, by an
`ObsPacker`; a request to a policy worker for a recurrent policy packs each agent's observation,
its recurrent carry and the env's episode-start flag into one row, `[E, A, D + S + 1]`. Trainers
and policy workers unpack inside their jitted calls (slices and reshapes only), so the learner
sees the observation dict it was built for.

Episode statistics: a game may report more than (return, length) per episode (its
`episode_stats`, `srljax.envs.vector.MultiAgentVectorEnv`); `episode_keys` names the columns
posted in a sample's `episodes` field, and `EpisodeStats` averages them per log line under the
names the env gives.

Numpy only at import (actor ranks never import jax); `unpack` works on numpy and jax arrays.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

TRAITS = ("teams", "presence_key", "episode_stats", "plot_episode_stats")


class ObsPacker:
    """A dict of per-agent arrays [..., *shape_k] <-> one float32 row [..., D], keys in space order."""

    def __init__(self, space: Mapping[str, Any]):
        self.keys = tuple(space)
        self.shapes = {k: tuple(int(d) for d in space[k].shape) for k in self.keys}
        self.sizes = {k: int(np.prod(self.shapes[k], dtype=np.int64)) for k in self.keys}
        self.offsets: Dict[str, int] = {}
        off = 0
        for k in self.keys:
            self.offsets[k] = off
            off += self.sizes[k]
        self.size = off

    def pack(self, obs: Mapping[str, np.ndarray], out: np.ndarray) -> np.ndarray:
        """Write `obs` (leaves [*lead, *shape_k]) into `out` [*lead, >= D] (columns 0..D-1)."""
        for k in self.keys:
            x = np.asarray(obs[k])
            lead = x.shape[:x.ndim - len(self.shapes[k])]
            o = self.offsets[k]
            out[..., o:o + self.sizes[k]] = x.reshape(lead + (self.sizes[k],))
        return out

    def unpack(self, flat) -> Dict[str, Any]:
        """The dict back from rows [*lead, >= D] (numpy or jax)."""
        lead = flat.shape[:-1]
        return {k: flat[..., self.offsets[k]:self.offsets[k] + self.sizes[k]].reshape(lead + self.shapes[k])
                for k in self.keys}


class PackedObsEnv:
    """A CPU vector env with dict observations, seen by actors as arrays [E, A, D] (`ObsPacker` rows).

    Steps, rewards, flags and episode reports pass through; `info["final_obs"]` is packed too."""

    def __init__(self, env):
        self.env = env
        self.packer = ObsPacker(env.observation_space)
        self.num_envs, self.num_agents = env.num_envs, env.num_agents
        self.action_space = env.action_space

    def _pack(self, obs) -> np.ndarray:
        return self.packer.pack(obs, np.empty((self.num_envs, self.num_agents, self.packer.size), np.float32))

    def reset(self, seed: int) -> np.ndarray:
        return self._pack(self.env.reset(seed))

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return self._pack(obs), reward, terminated, truncated, {**info, "final_obs": self._pack(info["final_obs"])}

    def close(self) -> None:
        self.env.close()

    def __getattr__(self, name: str):
        if name in TRAITS:             # what the wrapped env tells the dataflow
            return getattr(self.env, name)
        raise AttributeError(name)


class RequestCodec:
    """An inference request row per agent for a recurrent policy: [packed obs (D) | carry (S) | first (1)]."""

    def __init__(self, packer: ObsPacker, state_size: int):
        self.packer, self.S = packer, int(state_size)
        self.width = packer.size + self.S + 1

    def pack(self, obs: np.ndarray, state: np.ndarray, first: np.ndarray, out: np.ndarray) -> None:
        """obs [B, A, D] (packed), state [B, A, S], first [B] -> out [B, A, width]."""
        D = self.packer.size
        out[..., :D] = obs
        out[..., D:D + self.S] = state
        out[..., -1] = first[:, None]

    def unpack(self, rows):
        """rows [B, A, width] -> (obs dict, leaves [B * A, ...]; state [B * A, S]; first [B * A])."""
        B, A = rows.shape[:2]
        flat = rows.reshape((B * A, self.width))
        D = self.packer.size
        return self.packer.unpack(flat[:, :D]), flat[:, D:D + self.S], flat[:, -1]


def learner_batch(batch: Mapping[str, Any], packer: Optional[ObsPacker],
                  presence_key: Optional[str] = None) -> Dict[str, Any]:
    """A posted sample's fields as the learner wants them: packed observations become dicts, and
    with the env's `presence_key` (a dict key, or an int column of array observations) the `learn`
    weight is 0 for empty agent slots too. Array observations: an agent whose `final_obs` presence
    is 0 left the game on that step (it terminated before its env's episode ended), so
    `terminated` becomes per agent, [T, B, A], and its value is not bootstrapped."""
    out = dict(batch)
    if packer is not None:
        out["obs"] = packer.unpack(batch["obs"])
        out["final_obs"] = packer.unpack(batch["final_obs"])
    if presence_key is not None and "learn" in out:   # a key of dict observations, a column of arrays
        present = out["obs"][presence_key] if packer is not None else out["obs"][..., presence_key]
        out["learn"] = out["learn"] * present.reshape(out["learn"].shape).astype(out["learn"].dtype)
        if packer is None:
            term, gone = out["terminated"][..., None], 1.0 - out["final_obs"][..., presence_key]
            out["terminated"] = term + gone - term * gone          # or, for 0/1 floats (numpy and jax)
    return out


def episode_keys(stats: Mapping[str, str]) -> Tuple[str, ...]:
    """The per-episode columns a sample carries: return and length, plus a game's own statistics
    (`stats`: the env's `episode_stats`) and its `unstable` flag."""
    return ("return", "length") + (tuple(stats) + ("unstable",) if stats else ())


def episode_row(ep: Mapping[str, Any], keys: Sequence[str]) -> List[float]:
    return [float(ep.get(k, 0.0)) for k in keys]


class EpisodeStats:
    """Means of a game's own episode columns over the episodes of one log interval."""

    def __init__(self, stats: Mapping[str, str]):
        self.keys = episode_keys(stats)
        self.names = dict(stats)
        self.extra = [i for i, k in enumerate(self.keys) if k in self.names]
        self.rows: List[np.ndarray] = []

    def add(self, rows: np.ndarray) -> None:
        """rows [n, len(keys)]: episodes as posted (unstable ones are left out of the means)."""
        if "unstable" in self.keys:
            rows = rows[rows[:, self.keys.index("unstable")] < 0.5]
        if len(rows) and self.extra:
            self.rows.append(np.asarray(rows[:, self.extra], np.float64))

    def flush(self) -> Dict[str, Optional[float]]:
        """{metric name: mean} over the interval (None without episodes)."""
        if not self.extra:
            return {}
        names = [self.names[self.keys[i]] for i in self.extra]
        if not self.rows:
            return dict.fromkeys(names)
        means = np.concatenate(self.rows).mean(axis=0)
        self.rows = []
        return {n: float(m) for n, m in zip(names, means)}
