"""Multi-agent, dict-observation and recurrent games on the dataflow's fixed-layout messages.

The streams carry one float32 observation array per message field. A dict observation (as
hide-and-seek's, [E, A, ...] per key) is packed into one row per agent, `[E, A, D]`, by an
`ObsPacker`; a request to a policy worker for a recurrent policy packs each agent's observation,
its recurrent carry and the env's episode-start flag into one row, `[E, A, D + S + 1]`. Trainers
and policy workers unpack inside their jitted calls (slices and reshapes only), so the learner
sees the observation dict it was built for.

Episode statistics: a game reports more than (return, length) per episode; `episode_keys` names
the columns posted in a sample's `episodes` field, and `StageStats` averages them per log line
(`stage/<stat>`, `hider_return`, `seeker_return`). `plot_stage_stats` draws them from
metrics.jsonl into the run directory's stage_stats.png.

Numpy only at import (actor ranks never import jax); `unpack` works on numpy and jax arrays.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

HNS_STAGE_KEYS = ("max_box_move_prep", "max_box_move", "max_ramp_move_prep", "max_ramp_move",
                  "num_box_lock_prep", "num_box_lock", "num_ramp_lock_prep", "num_ramp_lock",
                  "hider_seen_frac")
HNS_TEAM_KEYS = ("hider_return", "seeker_return")


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


def recurrent_state_size(cfg, obs_space) -> int:
    """Width of the policy's recurrent carry (0: feedforward), known without importing jax: the
    entity network (dict observations) carries LSTM (c, h) of `network.hidden[-1]` each."""
    return 2 * int(cfg.network.hidden[-1]) if isinstance(obs_space, dict) else 0


def learner_batch(batch: Mapping[str, Any], packer: Optional[ObsPacker]) -> Dict[str, Any]:
    """A posted sample's fields as the learner wants them: packed observations become dicts."""
    out = dict(batch)
    if packer is not None:
        out["obs"] = packer.unpack(batch["obs"])
        out["final_obs"] = packer.unpack(batch["final_obs"])
    return out


def episode_keys(env_id: str) -> Tuple[str, ...]:
    """The per-episode columns a sample carries: return and length, plus a game's own statistics."""
    if env_id.startswith("hns/"):
        return ("return", "length") + HNS_TEAM_KEYS + HNS_STAGE_KEYS + ("unstable",)
    return ("return", "length")


def episode_row(ep: Mapping[str, Any], keys: Sequence[str]) -> List[float]:
    return [float(ep.get(k, 0.0)) for k in keys]


class StageStats:
    """Means of the extra episode columns over the episodes of one log interval."""

    def __init__(self, keys: Sequence[str]):
        self.keys = tuple(keys)
        self.extra = [i for i, k in enumerate(self.keys) if k not in ("return", "length", "unstable")]
        self.rows: List[np.ndarray] = []

    def add(self, rows: np.ndarray) -> None:
        """rows [n, len(keys)]: episodes as posted (unstable ones are left out of the means)."""
        if "unstable" in self.keys:
            rows = rows[rows[:, self.keys.index("unstable")] < 0.5]
        if len(rows) and self.extra:
            self.rows.append(np.asarray(rows[:, self.extra], np.float64))

    def flush(self) -> Dict[str, Optional[float]]:
        """{'stage/<stat>': mean, 'hider_return': mean, ...} over the interval (None without episodes)."""
        if not self.extra:
            return {}
        names = [self.keys[i] for i in self.extra]
        names = [k if k in HNS_TEAM_KEYS else f"stage/{k}" for k in names]
        if not self.rows:
            return dict.fromkeys(names)
        means = np.concatenate(self.rows).mean(axis=0)
        self.rows = []
        return {n: float(m) for n, m in zip(names, means)}


def plot_stage_stats(run_dir: Path) -> Optional[Path]:
    """stage_stats.png from metrics.jsonl: team returns, sight, box and ramp moves and locks."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    import json
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    panels = [("team return", HNS_TEAM_KEYS), ("hider seen (fraction of rewarded steps)", ("stage/hider_seen_frac",)),
              ("largest box move (m)", ("stage/max_box_move_prep", "stage/max_box_move")),
              ("largest ramp move (m)", ("stage/max_ramp_move_prep", "stage/max_ramp_move")),
              ("boxes locked", ("stage/num_box_lock_prep", "stage/num_box_lock")),
              ("ramps locked", ("stage/num_ramp_lock_prep", "stage/num_ramp_lock"))]
    if not any(r.get(k) is not None for r in rows for _, keys in panels for k in keys):
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(10, 8), squeeze=False)
    for ax, (title, keys) in zip(axes.ravel(), panels):
        for k in keys:
            pts = [(r["env_steps"], r[k]) for r in rows if r.get(k) is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, label=k.replace("stage/", ""))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("env steps", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = run_dir / "stage_stats.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
