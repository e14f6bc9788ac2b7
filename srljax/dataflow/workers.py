"""Actor and buffer workers (numpy only: these ranks never import jax), and the message layouts.

A worker is a loop over `poll()`: each call does what can be done now without waiting and says
whether it did anything. The same workers run as MPI ranks or side by side in one process. The
policy worker and inline policy are in `srljax.dataflow.policy`, the trainer in
`srljax.dataflow.trainer` (those need jax).

Shutdown: trainer 0 sends STOP; an actor stops stepping, collects the replies it is owed, waits
until its posted samples have been taken, then says FIN to its policy worker and its trainer (or
buffer), which serve and drain until every client has said FIN.
"""
from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from srljax.dataflow.streams import META, InferenceClient, MessageLayout, SampleConsumer, SamplePoster
from srljax.envs import spaces
from srljax.errors import UserError

LEARNER_FIELDS = ("obs", "action", "reward", "terminated", "truncated", "logp", "final_obs")
RECURRENT_FIELDS = ("first", "state")   # episode-start flags [T, B] and the carry at chunk starts
EPISODES_PER_ENV = 4     # per rollout; more episodes than this per env are counted but not reported


def team_mask(env) -> Optional[np.ndarray]:
    """[E, A] True for the hiders of a two-team game's current episodes (through wrappers), else None."""
    while env is not None:
        hider = getattr(env, "hider", None)
        if hider is not None:
            return np.asarray(hider, bool)
        env = getattr(env, "env", None)
    return None


def action_spec(action_space: spaces.Space) -> Tuple[Tuple[int, ...], Any]:
    """Shape and dtype of one action."""
    if isinstance(action_space, spaces.Box):
        return tuple(action_space.shape), np.float32
    return tuple(action_space.shape), np.int32


def sample_layout(T: int, B: int, obs_shape: Sequence[int], action_space: spaces.Space, agents: Optional[int] = None,
                  chunks: int = 0, state_size: int = 0, episode_width: int = 2) -> MessageLayout:
    """One posted sample: a [T, B] rollout of one env batch, plus the episodes it finished.

    Multi-agent games (`agents`) add an agent axis to actions, rewards and log-probs (`obs_shape`
    then starts with it too); recurrent policies (`state_size`) add `first` [T, B] and `state`
    [chunks, B, agents, state_size], the carry at each chunk start. `episodes` rows hold
    `episode_width` statistics (`multiagent.episode_keys`).
    `_meta` = (oldest policy version used, source rank, episodes reported, newest version used).
    """
    obs_shape = tuple(obs_shape)
    act_shape, act_dtype = action_spec(action_space)
    tb = (T, B)
    tba = tb + ((agents,) if agents is not None else ())
    spec = {
        "obs": (tb + obs_shape, np.float32), "action": (tba + act_shape, act_dtype),
        "reward": (tba, np.float32), "terminated": (tb, np.float32), "truncated": (tb, np.float32),
        "logp": (tba, np.float32), "final_obs": (tb + obs_shape, np.float32),
        "episodes": ((EPISODES_PER_ENV * B, episode_width), np.float32), "env_resets": ((1,), np.int32)}
    if state_size:
        spec["first"] = (tb, np.float32)
        spec["state"] = ((chunks,) + tba[1:] + (state_size,), np.float32)
    if agents is not None:
        spec["learn"] = (tba, np.float32)     # 0 for agents a scripted opponent played (not learned from)
    return MessageLayout(spec)


def reply_layout(B: int, action_space: spaces.Space, agents: Optional[int] = None,
                 state_size: int = 0) -> MessageLayout:
    """A policy worker's answer to one env batch: actions, their log-probs and value estimates
    (per agent for multi-agent games), and the next recurrent carry for recurrent policies."""
    act_shape, act_dtype = action_spec(action_space)
    ba = (B,) + ((agents,) if agents is not None else ())
    spec = {"action": (ba + act_shape, act_dtype), "logp": (ba, np.float32), "value": (ba, np.float32)}
    if state_size:
        spec["state"] = (ba + (state_size,), np.float32)
    return MessageLayout(spec)


def learner_fields(layout: MessageLayout) -> Tuple[str, ...]:
    """The fields of a sample the learner reads."""
    return LEARNER_FIELDS + tuple(f for f in RECURRENT_FIELDS + ("learn",) if f in layout.spec)


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

    def __init__(self, envs: Sequence[Any], seeds: Sequence[int], policy: InferenceClient, poster: SamplePoster,
                 control, rollout_len: int, fin_to: Sequence[int], guard=None, recurrent=None, chunk_len: int = 0,
                 episode_keys: Sequence[str] = ("return", "length"), random_opponents: float = 0.0):
        self.policy, self.poster, self.control = policy, poster, control
        self.T = rollout_len
        self.fin_to = list(fin_to)
        self.guard = guard               # dataflow.guards.EnvGuard: non-finite observations and rewards
        self.recurrent = recurrent       # multiagent.RequestCodec: requests carry the carry and `first`
        self.chunk_len = chunk_len or rollout_len
        self.episode_keys = tuple(episode_keys)
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
        if self.random_opponents > 0:
            for slot in self.slots:
                if team_mask(slot.env) is None:
                    raise UserError("distributed.random_opponents needs a two-team game (hide-and-seek)")
                slot.scripted = np.zeros(slot.obs.shape[:2], bool)
                self._draw_opponents(slot, np.ones(slot.obs.shape[0], bool))

    def poll(self) -> bool:
        if self.stopping:
            return self._drain()
        if self.control.stop_requested():
            self.stopping = True
            return True
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
        hider = team_mask(slot.env)
        for e in np.flatnonzero(starting):
            slot.scripted[e] = False
            if self.rng.random() < self.random_opponents:
                slot.scripted[e] = hider[e] if self.rng.random() < 0.5 else ~hider[e]

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
        version = int(reply[META][0])
        slot.v_min, slot.v_max = min(slot.v_min, version), max(slot.v_max, version)
        if slot.scripted is not None and slot.scripted.any():
            nvec = np.asarray(slot.env.action_space.nvec)
            random = self.rng.integers(0, nvec, size=np.shape(action)).astype(np.asarray(action).dtype)
            action = np.where(slot.scripted[..., None], random, action)
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
            meta[2], meta[3] = slot.episodes, slot.v_max
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
        for slot in self.slots:
            slot.env.close()
        self.done = True
        return True


class BufferWorker:
    """Sits between actors and a trainer: takes samples from its actors and forwards them.

    Its message buffers form a FIFO that absorbs bursts, so actors rarely wait on a busy trainer.
    """

    def __init__(self, consumer: SampleConsumer, poster: SamplePoster, control, sources: Sequence[int],
                 sink: int):
        self.consumer, self.poster, self.control = consumer, poster, control
        self.sources, self.sink = set(sources), sink
        self.held = None
        self.forwarded = 0
        self.done = False

    def poll(self) -> bool:
        progress = False
        if self.held is None:
            self.held = self.consumer.consume()
            progress = self.held is not None
        if self.held is not None:
            i = self.poster.acquire()
            if i is not None:
                dst = self.poster.views[i]
                for name, src in self.held.data.items():
                    dst[name][...] = src
                self.poster.post(i, self.held.version)
                self.held = None
                self.forwarded += 1
                progress = True
        if (self.control.stop_requested() and self.held is None
                and self.sources <= set(self.control.poll_fins()) and not self.poster.pending()):
            self.consumer.consume()      # give the last buffer back
            close = getattr(self.consumer, "close", None)
            if close is not None:
                close()
            self.control.send_fin(self.sink)
            self.done = True
            return True
        return progress


class LocalControl:
    """STOP and FIN inside one process (the MPI version is `mpi_streams.MpiControl`)."""

    def __init__(self, hub: dict, rank: int):
        self.hub, self.rank = hub, rank
        hub.setdefault("stop", False)
        hub.setdefault("fins", {})

    def stop_requested(self) -> bool:
        return self.hub["stop"]

    def send_stop(self, ranks: Sequence[int]) -> None:
        self.hub["stop"] = True

    def send_fin(self, dest: int) -> None:
        self.hub["fins"].setdefault(dest, []).append(self.rank)

    def poll_fins(self) -> List[int]:
        return self.hub["fins"].get(self.rank, [])

    def finish(self, timeout: float = 30.0) -> None:
        pass


def __getattr__(name: str):
    """`PolicyWorker` and `TrainerWorker` live beside (they import jax); reachable from here too."""
    if name == "PolicyWorker":
        from srljax.dataflow.policy import PolicyWorker
        return PolicyWorker
    if name == "TrainerWorker":
        from srljax.dataflow.trainer import TrainerWorker
        return TrainerWorker
    raise AttributeError(name)
