"""Replay on a buffer worker (numpy only): n-step transitions, a sum tree, the replay-ratio controller.

    settings = BufferSettings.derive(algo.replay, num_envs, buffers)   # from the built algorithm's spec
    store = ReplayStore(settings, obs_shape, action_shape, action_dtype)
    store.add(sample_data)                       # one posted [T, B] rollout -> T * B n-step transitions
    ids, batch, weight = store.sample(n, rng)    # uniform, or prioritized with importance weights
    store.set_priorities(ids, priority)          # |TD| per sampled id, from the trainer

A transition is {"obs", "action", "reward" (the n-step return), "discount" (gamma^m, 0 after a
termination), "next_obs"}: the window of step t holds up to `n_step` steps of the same rollout,
cut short at the first episode end (a truncation still bootstraps from its final observation) and
at the end of the posted rollout (a shorter window: `final_obs` of a step is the observation it
reached, so an m-step return with m < n is still exact). Ids are insertion counts (slot = id %
capacity), so a priority for a slot overwritten since it was sampled is ignored.

Prioritized sampling draws id i with probability P(i) = p_i^alpha / sum_j p_j^alpha and weighs it
by (size * P(i))^-beta divided by the batch's largest weight (as `learners.replay` does on device);
new transitions get the largest priority seen so far.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

from srljax.learners.replay_spec import PRIORITY_EPS, ReplaySettings


@dataclasses.dataclass(frozen=True)
class BufferSettings:
    """What a buffer worker and a trainer agree on for replay: derived from the algorithm's
    `ReplaySettings` (`derive`), the one replay spec, never read from a config section."""

    capacity: int                 # transitions held per buffer worker
    batch_size: int               # transitions per gradient step
    batches_per_message: int      # gradient steps per served message
    n_step: int
    gamma: float
    prioritized: bool
    alpha: float
    beta: float
    learning_starts: int          # env steps a buffer collects before it serves
    ratio: float                  # samples trained on per env step (the target)

    @classmethod
    def derive(cls, replay: ReplaySettings, num_envs: int, buffers: int = 1) -> "BufferSettings":
        """From a built replay algorithm's settings (`algo.replay`): its buffer_size per buffer, its
        gradient_steps per message, its target ratio (`ReplaySettings.target_ratio`), learning_starts
        split over the buffers, each collecting at least one batch first."""
        return cls(capacity=int(replay.buffer_size), batch_size=int(replay.batch_size),
                   batches_per_message=int(replay.gradient_steps), n_step=int(replay.n_step),
                   gamma=float(replay.gamma), prioritized=bool(replay.prioritized), alpha=float(replay.alpha),
                   beta=float(replay.beta), ratio=replay.target_ratio(num_envs),
                   # per buffer, and at least one batch (a buffer that owes samples can serve them)
                   learning_starts=max(-(-int(replay.learning_starts) // max(buffers, 1)), int(replay.batch_size)))

    @property
    def per_message(self) -> int:
        return self.batch_size * self.batches_per_message


def n_step_transitions(data: Dict[str, np.ndarray], n: int, gamma: float) -> Dict[str, np.ndarray]:
    """The n-step transition of every step of one posted [T, B] rollout, flattened to [T * B]."""
    reward, term = data["reward"].astype(np.float64), data["terminated"] > 0
    ended = term | (data["truncated"] > 0)
    T, B = reward.shape
    t_idx = np.arange(T)[:, None]
    ret = np.zeros((T, B))
    alive = np.ones((T, B), bool)
    last = np.broadcast_to(t_idx, (T, B)).copy()
    for k in range(n):
        valid = np.zeros((T, B), bool)
        valid[:T - k] = True
        use = alive & valid
        r_k = np.zeros((T, B))
        r_k[:T - k] = reward[k:]
        e_k = np.zeros((T, B), bool)
        e_k[:T - k] = ended[k:]
        ret += np.where(use, gamma ** k * r_k, 0.0)
        last = np.where(use, t_idx + k, last)
        alive = use & ~e_k
    b_idx = np.broadcast_to(np.arange(B)[None], (T, B))
    steps = last - t_idx + 1
    discount = gamma ** steps * (1.0 - term[last, b_idx])
    flat = lambda x: x.reshape((T * B,) + x.shape[2:])   # noqa: E731
    return {"obs": flat(data["obs"]), "action": flat(data["action"]), "reward": flat(ret.astype(np.float32)),
            "discount": flat(discount.astype(np.float32)), "next_obs": flat(data["final_obs"][last, b_idx])}


class SumTree:
    """Priorities in a binary tree of partial sums: O(log n) updates and proportional draws."""

    def __init__(self, capacity: int):
        self.leaves = 1 << max(0, int(capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def get(self, idx: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(idx) + self.leaves]

    def set(self, idx: np.ndarray, value: np.ndarray) -> None:
        node = np.asarray(idx, np.int64) + self.leaves
        self.tree[node] = value
        node = np.unique(node // 2)
        while node.size and node[0] >= 1:
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]
            if node[0] == 1:
                break
            node = np.unique(node // 2)

    def find(self, u: np.ndarray) -> np.ndarray:
        """The leaf holding each mass point u in [0, total)."""
        u = np.array(u, np.float64)
        node = np.ones(u.shape, np.int64)
        for _ in range(self.leaves.bit_length() - 1):
            left = self.tree[2 * node]
            right = u >= left
            u = np.where(right, u - left, u)
            node = 2 * node + right
        return node - self.leaves


class ReplayStore:
    """A circular buffer of n-step transitions with uniform or prioritized sampling."""

    def __init__(self, settings: BufferSettings, obs_shape: Tuple[int, ...], action_shape: Tuple[int, ...],
                 action_dtype):
        self.s = settings
        C = settings.capacity
        self.data = {"obs": np.zeros((C,) + tuple(obs_shape), np.float32),
                     "action": np.zeros((C,) + tuple(action_shape), action_dtype),
                     "reward": np.zeros(C, np.float32), "discount": np.zeros(C, np.float32),
                     "next_obs": np.zeros((C,) + tuple(obs_shape), np.float32)}
        self.tree = SumTree(C) if settings.prioritized else None
        self.added = 0                 # transitions ever added (the next id)
        self.max_priority = 1.0
        self.priority_updates = 0      # priorities applied
        self.stale_priorities = 0      # priorities for transitions overwritten since they were sampled

    @property
    def size(self) -> int:
        return min(self.added, self.s.capacity)

    def add(self, sample: Dict[str, np.ndarray]) -> int:
        """Store the n-step transitions of one posted rollout; returns how many."""
        return self.add_transitions(n_step_transitions(sample, self.s.n_step, self.s.gamma))

    def add_transitions(self, tr: Dict[str, np.ndarray]) -> int:
        n = tr["reward"].shape[0]
        C = self.s.capacity
        if n > C:
            tr = {k: v[n - C:] for k, v in tr.items()}
            self.added += n - C
            n = C
        slots = (self.added + np.arange(n)) % C
        for k, v in tr.items():
            self.data[k][slots] = v
        if self.tree is not None:
            self.tree.set(slots, np.full(n, self.max_priority ** self.s.alpha))
        self.added += n
        return n

    def sample(self, n: int, rng: np.random.Generator,
               out: Optional[Dict[str, np.ndarray]] = None) -> Tuple[np.ndarray, Dict[str, np.ndarray], np.ndarray]:
        """`n` transitions with replacement: (ids [n], transitions, importance weights [n]); `out`:
        arrays to write the transitions into (else new ones)."""
        size = self.size
        if self.tree is None:
            slots = rng.integers(0, size, n)
            weight = np.ones(n, np.float32)
        else:
            total = self.tree.total
            u = (np.arange(n) + rng.random(n)) * (total / n)        # one draw per equal stratum
            slots = self.tree.find(np.minimum(u, np.nextafter(total, 0)))
            slots = np.where(slots < size, slots, rng.integers(0, size, n))
            p = self.tree.get(slots) / total
            zero = p <= 0
            if zero.any():                                            # rounding landed on an empty leaf
                slots[zero] = rng.integers(0, size, int(zero.sum()))
                p = self.tree.get(slots) / total
            w = (size * p) ** (-self.s.beta)
            weight = (w / w.max()).astype(np.float32)
        base = self.added - size
        ids = base + (slots - base) % self.s.capacity
        if out is None:
            out = {k: v[slots] for k, v in self.data.items()}
        else:
            for k, v in self.data.items():
                np.take(v, slots, axis=0, out=out[k])
        return ids.astype(np.int64), out, weight

    def set_priorities(self, ids: np.ndarray, priority: np.ndarray) -> int:
        """Set raw priorities (|TD|) of sampled ids still held; returns how many were applied."""
        if self.tree is None:
            return 0
        ids, priority = np.ravel(ids), np.ravel(priority).astype(np.float64)
        keep = ids >= self.added - self.size
        self.stale_priorities += int((~keep).sum())
        ids, priority = ids[keep], np.maximum(priority[keep], PRIORITY_EPS)
        if ids.size:
            self.tree.set(ids % self.s.capacity, priority ** self.s.alpha)
            self.max_priority = max(self.max_priority, float(priority.max()))
        self.priority_updates += int(ids.size)
        return int(ids.size)


class RatioController:
    """Holds samples trained on per env step to `ratio`, both ways (counted from `learning_starts`).

    `may_serve(n)`: a batch of n more samples keeps the samples served within ratio x env steps (so a
    fast trainer waits for env steps); `may_take(steps)`: taking `steps` more env steps leaves at
    most `slack` samples owed to the trainer (so a slow trainer holds the actors back).
    """

    def __init__(self, ratio: float, learning_starts: int, slack: float):
        self.ratio, self.learning_starts, self.slack = float(ratio), int(learning_starts), float(slack)
        self.env_steps = 0
        self.served = 0

    @property
    def started(self) -> bool:
        return self.env_steps >= self.learning_starts

    def owed(self, extra_steps: int = 0) -> float:
        """Samples the trainer may still take (negative: ahead of the ratio)."""
        counted = max(0, self.env_steps + extra_steps - self.learning_starts)
        return self.ratio * counted - self.served

    def may_serve(self, n: int) -> bool:
        return self.started and self.owed() >= n

    def may_take(self, steps: int) -> bool:
        return not self.started or self.owed(steps) <= self.slack

    def took(self, steps: int) -> None:
        self.env_steps += int(steps)

    def served_batch(self, n: int) -> None:
        self.served += int(n)

    def achieved(self) -> Optional[float]:
        counted = self.env_steps - self.learning_starts
        return self.served / counted if counted > 0 else None
