"""The actor worker: steps a ring of CPU env batches and posts their rollouts (numpy only).

Shutdown: trainer 0 sends STOP; an actor stops stepping, collects the replies it is owed, waits
until its posted samples have been taken, then says FIN to its policy worker and its trainer (or
buffer), which serve and drain until every client has said FIN.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

import numpy as np

from srljax.dataflow.wire.schema import META, BatchSpec, Header
from srljax.dataflow.wire.streams import InferenceClient, SamplePoster
from srljax.envs.vector import has_teams
from srljax.errors import UserError


@dataclasses.dataclass
class ActorStreams:
    """An actor's ends of the streams: where it asks for actions, posts samples, hears STOP."""

    policy: InferenceClient
    poster: SamplePoster
    control: Any
    fin_to: Sequence[int]            # ranks told FIN at the end (its sample sink, its policy worker)


@dataclasses.dataclass
class _RingSlot:
    env: Any
    obs: np.ndarray
    buf: Optional[int] = None        # the sample message being filled
    t: int = 0
    episodes: int = 0
    v_min: int = 0
    v_max: int = -1
    waiting: bool = False            # a request is out and its reply not yet seen
    steps: int = 0                   # steps of this env batch so far
    state: Optional[np.ndarray] = None   # recurrent policies: the carry per env and agent
    first: Optional[np.ndarray] = None   # recurrent policies: which envs start an episode now
    scripted: Optional[np.ndarray] = None  # multi-agent: [B, A], agents playing uniformly random actions


class ActorWorker:
    """Steps a ring of env batches: while one batch waits for actions, the others simulate.

    It only acts and posts: observations go out on the inference stream (or to an inline
    policy), rollouts of T steps go out on the sample stream tagged with the oldest policy version
    that chose their actions.
    """

    def __init__(self, envs: Sequence[Any], seeds: Sequence[int], streams: ActorStreams, spec: BatchSpec,
                 guard=None, recurrent=None, random_opponents: float = 0.0):
        self.policy, self.poster, self.control = streams.policy, streams.poster, streams.control
        self.T = spec.T
        self.fin_to = list(streams.fin_to)
        self.guard = guard               # dataflow.guards.EnvGuard: non-finite observations and rewards
        self.recurrent = recurrent       # multiagent.RequestCodec: requests carry the carry and `first`
        self.chunk_len = spec.chunk_len or spec.T
        self.episode_keys = tuple(spec.episode_keys)
        self.slots = [_RingSlot(env, np.asarray(env.reset(seed), np.float32)) for env, seed in zip(envs, seeds)]
        if recurrent is not None:
            for slot in self.slots:
                slot.state = np.zeros(slot.obs.shape[:2] + (recurrent.S,), np.float32)
                slot.first = np.ones(slot.obs.shape[0], np.float32)
        self.stopping = False
        self.done = False
        self.env_steps = 0
        self.episodes_unreported = 0
        # Opponent variety for two-team games: in this fraction of episodes one team, drawn at
        # random, plays uniformly random actions and is not learned from (`learn` = 0).
        self.random_opponents = float(random_opponents)
        self.rng = np.random.default_rng(list(seeds) + [7])
        self.epsilon, self.num_actions = 0.0, 0     # `explore`: random actions at this rate
        if self.random_opponents > 0:
            for slot in self.slots:
                if not has_teams(slot.env):
                    raise UserError("distributed.random_opponents needs a two-team game (an env with teams())")
                slot.scripted = np.zeros(slot.obs.shape[:2], bool)
                self._draw_opponents(slot, np.ones(slot.obs.shape[0], bool))

    def explore(self, epsilon: float, num_actions: int) -> None:
        """Replace the policy's (discrete) action by a uniformly random one with probability
        `epsilon`, per env and step (Ape-X: each actor its own rate)."""
        self.epsilon, self.num_actions = float(epsilon), int(num_actions)

    def poll(self) -> bool:
        if self.stopping:
            return self._drain()
        if self.control.stop_requested():
            self.stopping = True
            return True
        if hasattr(self.policy, "refresh"):        # an inline policy reads parameters even when held back
            self.policy.refresh()
        progress = False
        for k, slot in enumerate(self.slots):
            if slot.buf is None:
                slot.buf = self.poster.acquire()
                if slot.buf is None:
                    continue                       # backpressure: every sample buffer is in flight
                slot.t, slot.episodes, slot.v_min, slot.v_max = 0, 0, 2**62, -1
            if not slot.waiting:
                self._request(k, slot)
                progress = True
                continue
            reply = self.policy.response(k)
            if reply is None:
                continue
            slot.waiting = False
            self._step(slot, reply)
            progress = True
            if slot.buf is not None:
                self._request(k, slot)
        return progress

    def _draw_opponents(self, slot: _RingSlot, starting: np.ndarray) -> None:
        """For the envs starting an episode: which team (if any) plays random actions in it."""
        teams = slot.env.teams()
        for e in np.flatnonzero(starting):
            slot.scripted[e] = False
            if self.rng.random() < self.random_opponents:
                slot.scripted[e] = teams[e] == (1 if self.rng.random() < 0.5 else 0)

    def _request(self, k: int, slot: _RingSlot) -> None:
        view, t = self.poster.views[slot.buf], slot.t
        view["obs"][t] = slot.obs
        if self.recurrent is None:
            self.policy.obs(k)[...] = slot.obs
        else:
            view["first"][t] = slot.first
            if t % self.chunk_len == 0:
                view["state"][t // self.chunk_len] = slot.state
            self.recurrent.pack(slot.obs, slot.state, slot.first, self.policy.obs(k))
        self.policy.request(k)
        slot.waiting = True

    def _step(self, slot: _RingSlot, reply) -> None:
        view, t = self.poster.views[slot.buf], slot.t
        action = reply["action"]
        version = int(reply[META][Header.VERSION])
        slot.v_min, slot.v_max = min(slot.v_min, version), max(slot.v_max, version)
        if slot.scripted is not None and slot.scripted.any():
            nvec = np.asarray(slot.env.action_space.nvec)
            random = self.rng.integers(0, nvec, size=np.shape(action)).astype(np.asarray(action).dtype)
            action = np.where(slot.scripted[..., None], random, action)
        if self.epsilon > 0:
            explore = self.rng.random(np.shape(action)) < self.epsilon
            action = np.where(explore, self.rng.integers(0, self.num_actions, np.shape(action)), action)
        view["action"][t] = action
        view["logp"][t] = reply["logp"]
        if "learn" in view:
            view["learn"][t] = 1.0 if slot.scripted is None else ~slot.scripted
        out = slot.env.step(action)
        slot.steps += 1
        if self.guard is not None and not self.guard.finite(out[0], out[1], out[4]["final_obs"]):
            out = self.guard.handle(self.slots.index(slot), slot.steps, slot.env, slot.obs, out)
        obs, reward, terminated, truncated, info = out
        view["reward"][t] = reward
        view["terminated"][t] = terminated
        view["truncated"][t] = truncated
        view["final_obs"][t] = info["final_obs"]
        room = view["episodes"].shape[0]
        for ep in info["episodes"]:
            if slot.episodes < room:
                view["episodes"][slot.episodes] = [float(ep.get(k, 0.0)) for k in self.episode_keys]
                slot.episodes += 1
            else:
                self.episodes_unreported += 1
        if self.recurrent is not None:
            slot.state = np.array(reply["state"], np.float32)
            slot.first = (np.asarray(terminated, bool) | np.asarray(truncated, bool)).astype(np.float32)
        slot.obs = np.asarray(obs, np.float32)
        if slot.scripted is not None:
            self._draw_opponents(slot, np.asarray(terminated, bool) | np.asarray(truncated, bool))
        slot.t += 1
        self.env_steps += len(reward)
        if slot.t == self.T:
            meta = view[META]
            meta[Header.EPISODES], meta[Header.NEWEST] = slot.episodes, slot.v_max
            view["env_resets"][0] = self.guard.take_unreported() if self.guard is not None else 0
            self.poster.post(slot.buf, slot.v_min)
            slot.buf = self.poster.acquire()
            if slot.buf is not None:
                slot.t, slot.episodes, slot.v_min, slot.v_max = 0, 0, 2**62, -1

    def _drain(self) -> bool:
        for k, slot in enumerate(self.slots):
            if slot.waiting and self.policy.response(k) is not None:
                slot.waiting = False
        if any(s.waiting for s in self.slots) or self.poster.pending():
            return False
        for dest in self.fin_to:
            self.control.send_fin(dest)
        self.close()
        self.done = True
        return True

    def close(self) -> None:
        close = getattr(self.policy, "close", None)       # an inline policy's parameter reader
        if close is not None and not getattr(self, "closed", False):
            close()
        self.closed = True
        for slot in self.slots:
            if slot.env is not None:
                slot.env.close()
                slot.env = None
