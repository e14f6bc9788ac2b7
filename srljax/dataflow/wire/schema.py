"""The message schema: every layout a stream carries, named header slots, and the batch spec.

Every stream carries fixed-layout messages agreed at start-up. A `MessageLayout` maps field names
to (shape, dtype) and places them in one contiguous byte buffer, so a message is one buffer that
moves whole (one MPI send, no pickling) and whose fields are numpy views a worker writes into
directly. Each message starts with an int64 header, `META`, whose slots are named by `Header`.

`BatchSpec` says what one posted sample holds (T steps of B envs, an agent axis, a recurrent
carry, episode statistics); actors, buffers, policy workers and trainers all build their layouts
from it:

    sample  (`spec.samples()`)  obs [T, B, *obs], action [T, B, (A,) *act], reward/logp [T, B, (A)],
                                terminated/truncated [T, B], final_obs [T, B, *obs],
                                episodes [4 B, len(episode_keys)], env_resets [1];
                                recurrent: first [T, B], state [chunks, B, A, S];
                                multi-agent: learn [T, B, A] (0: not learned from)
    reply   (`spec.replies()`)  action, logp, value [B, (A,) ...]; recurrent: state [B, A, S]
    request                     float32 rows `spec.request_shape` per env (the observation, or for
                                recurrent policies [A, D + S + 1]: packed obs, carry, episode start)
    params                      one float32 vector (`policy.ParamCodec`)
    replay  (`replay_batches`)  buffer -> trainer, K batches of N transitions: obs, next_obs [K, N, *obs],
                                action [K, N, *act], reward, discount, weight [K, N], id [K, N] int64,
                                episodes [rows, len(episode_keys)], counts [5] (`ReplayCount`)
    priority (`priorities`)     trainer -> buffer: id [K, N] int64, priority [K, N] float32

Numpy only.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from srljax.envs import spaces

Spec = Mapping[str, Tuple[Tuple[int, ...], "np.dtype | str | type"]]
META = "_meta"
_ALIGN = 64
EPISODES_PER_ENV = 4     # per rollout; more episodes than this per env are counted but not reported
LEARNER_FIELDS = ("obs", "action", "reward", "terminated", "truncated", "logp", "final_obs")
RECURRENT_FIELDS = ("first", "state")


class Header:
    """Slots of the int64 `META` header of every message."""

    VERSION = 0    # sample: oldest policy version that chose its actions; reply and params: their version
    SOURCE = 1     # sample: the rank (or in-process id) that posted it
    EPISODES = 2   # sample: rows of `episodes` filled
    NEWEST = 3     # sample: newest policy version that chose its actions
    SIZE = 4


class ReplayCount:
    """Slots of a replay message's `counts`: what the buffer saw since its previous message."""

    ENV_STEPS = 0      # env steps its actors posted
    ENV_RESETS = 1     # env batches reset for non-finite values (`env.on_nonfinite=reset`)
    SIZE = 2           # transitions held
    PRIORITY_UPDATES = 3   # priorities applied so far (a running total)
    HELD_MS = 4        # milliseconds the buffer has held its actors back (flow control; a running total)


class MessageLayout:
    """Named, aligned fields in one contiguous byte buffer, after an int64 header."""

    def __init__(self, spec: Spec):
        self.spec: Dict[str, Tuple[Tuple[int, ...], np.dtype]] = {
            META: ((Header.SIZE,), np.dtype(np.int64)),
            **{k: (tuple(int(d) for d in s), np.dtype(t)) for k, (s, t) in spec.items()}}
        self.offsets: Dict[str, int] = {}
        offset = 0
        for name, (shape, dtype) in self.spec.items():
            self.offsets[name] = offset
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            offset += -(-nbytes // _ALIGN) * _ALIGN
        self.nbytes = offset

    def alloc(self) -> np.ndarray:
        return np.zeros(self.nbytes, np.uint8)

    def views(self, buf: np.ndarray) -> Dict[str, np.ndarray]:
        out = {}
        for name, (shape, dtype) in self.spec.items():
            start = self.offsets[name]
            count = int(np.prod(shape, dtype=np.int64))
            out[name] = buf[start:start + count * dtype.itemsize].view(dtype).reshape(shape)
        return out

    def signature(self) -> np.ndarray:
        """A small int64 summary of the layout, compared across ranks at start-up."""
        text = ";".join(f"{k}:{s}:{d.str}" for k, (s, d) in self.spec.items())
        return np.array([self.nbytes, len(self.spec), hash_text(text)], np.int64)


def hash_text(text: str) -> int:
    """A stable 63-bit hash (Python's own `hash` of a str differs between processes)."""
    h = 1469598103934665603
    for byte in text.encode():
        h = ((h ^ byte) * 1099511628211) & 0x7FFFFFFFFFFFFFFF
    return h


def action_spec(action_space: spaces.Space) -> Tuple[Tuple[int, ...], Any]:
    """Shape and dtype of one action."""
    if isinstance(action_space, spaces.Box):
        return tuple(action_space.shape), np.float32
    return tuple(action_space.shape), np.int32


@dataclasses.dataclass(frozen=True)
class BatchSpec:
    """What one posted sample holds: T steps of B envs (of `agents` agents each), and what rides along."""

    T: int
    B: int
    obs_shape: Tuple[int, ...]            # per env: (A, D) packed rows for multi-agent games
    action_space: spaces.Space            # per agent
    agents: Optional[int] = None
    state_size: int = 0                   # recurrent carry per agent (0: feedforward)
    chunk_len: int = 0                    # recurrent training chunk (0: the whole rollout)
    episode_keys: Tuple[str, ...] = ("return", "length")

    @property
    def chunks(self) -> int:
        return self.T // (self.chunk_len or self.T)

    @property
    def recurrent(self) -> bool:
        return self.state_size > 0

    @property
    def request_shape(self) -> Tuple[int, ...]:
        """One env's inference request row(s)."""
        if self.recurrent:
            return (self.agents, self.obs_shape[-1] + self.state_size + 1)
        return tuple(self.obs_shape)

    def _agent_axis(self) -> Tuple[int, ...]:
        return (self.agents,) if self.agents is not None else ()

    def samples(self) -> MessageLayout:
        """The sample message: one [T, B] rollout of one env batch, and the episodes it finished."""
        act_shape, act_dtype = action_spec(self.action_space)
        tb = (self.T, self.B)
        tba = tb + self._agent_axis()
        obs = tb + tuple(self.obs_shape)
        spec = {
            "obs": (obs, np.float32), "action": (tba + act_shape, act_dtype),
            "reward": (tba, np.float32), "terminated": (tb, np.float32), "truncated": (tb, np.float32),
            "logp": (tba, np.float32), "final_obs": (obs, np.float32),
            "episodes": ((EPISODES_PER_ENV * self.B, len(self.episode_keys)), np.float32),
            "env_resets": ((1,), np.int32)}
        if self.recurrent:
            spec["first"] = (tb, np.float32)
            spec["state"] = ((self.chunks,) + tba[1:] + (self.state_size,), np.float32)
        if self.agents is not None:
            spec["learn"] = (tba, np.float32)
        return MessageLayout(spec)

    def replies(self) -> MessageLayout:
        """A policy's answer to one env batch: actions, log-probs, values (per agent), next carry."""
        act_shape, act_dtype = action_spec(self.action_space)
        ba = (self.B,) + self._agent_axis()
        spec = {"action": (ba + act_shape, act_dtype), "logp": (ba, np.float32), "value": (ba, np.float32)}
        if self.recurrent:
            spec["state"] = (ba + (self.state_size,), np.float32)
        return MessageLayout(spec)

    def learner_fields(self) -> Tuple[str, ...]:
        """The fields of a sample the learner reads."""
        extra = (RECURRENT_FIELDS if self.recurrent else ()) + (("learn",) if self.agents is not None else ())
        return LEARNER_FIELDS + extra


def replay_batches(spec: BatchSpec, K: int, N: int, episode_rows: int) -> MessageLayout:
    """A served replay message: K batches of N n-step transitions and the episodes seen since the last."""
    act_shape, act_dtype = action_spec(spec.action_space)
    kn = (K, N)
    return MessageLayout({
        "obs": (kn + tuple(spec.obs_shape), np.float32), "action": (kn + act_shape, act_dtype),
        "reward": (kn, np.float32), "discount": (kn, np.float32), "next_obs": (kn + tuple(spec.obs_shape), np.float32),
        "weight": (kn, np.float32), "id": (kn, np.int64),
        "episodes": ((episode_rows, len(spec.episode_keys)), np.float32), "counts": ((5,), np.int64)})


def priorities(K: int, N: int) -> MessageLayout:
    """New priorities (|TD error|) for the transitions of one replay message, by id."""
    return MessageLayout({"id": ((K, N), np.int64), "priority": ((K, N), np.float32)})
