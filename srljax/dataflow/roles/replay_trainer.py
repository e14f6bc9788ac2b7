"""Distributed mode for algorithms that learn from replay: the trainer's side and the wiring.

A replay buffer worker (`buffer.ReplayBufferWorker`) serves messages of K batches of N sampled
transitions (`schema.replay_batches`); the trainer takes K gradient steps on each (one jitted
`lax.scan`: one policy version), sends |TD| per sampled id back to that buffer
(`schema.priorities`) and publishes its parameters to the policy workers (or inline actors) on the
parameter stream. Env steps and finished episodes reach the trainer inside the replay messages.

`ReplayAgent` shows a replay learner (`learners.protocols.ReplayAlgorithm`: `init(key, obs)`,
`update(state, batch, weight) -> (state, metrics, |td|)`, `actor_step(params, obs, key) -> (action,
logp, value)`) to the roles as they call a rollout learner (`init(key, example_batch)`, `act`,
`update(state, batch)`). The trainer's rank is wired by `build._trainer`, with the replay parts from
`trainer_stage`; a buffer's by `build_buffer`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from srljax.dataflow.roles.intake import EpisodeCounts
from srljax.dataflow.replay.store import BufferSettings, RatioController, ReplayStore
from srljax.dataflow.wire.schema import ReplayCount
from srljax.dataflow.roles.trainer import TrainerParts, TrainerStreams, TrainerWorker

TRANSITION = ("obs", "action", "reward", "discount", "next_obs")
EPISODE_ROWS = 64          # episodes a replay message reports (more wait for the next message)


class ReplayAgent:
    """A replay learner as the distributed roles call it (no recurrent state: `model` is None)."""

    model = None

    def __init__(self, learner):
        self.learner = learner

    def init(self, key, example: Mapping[str, Any]):
        """`example`: a posted sample's learner fields [T, B, ...] (`policy.example_batch`)."""
        return self.learner.init(key, jnp.asarray(example["obs"][0]))

    def policy_params(self, state):
        return self.learner.policy_params(state)

    def act(self, params, obs, key):
        return self.learner.actor_step(params, obs, key)

    def update(self, state, batch):
        """One gradient step per batch of a replay message: (state, mean metrics, |td| [K, N])."""
        def step(state, b):
            state, metrics, td_abs = self.learner.update(state, {k: b[k] for k in TRANSITION}, b["weight"])
            return state, (metrics, td_abs)

        state, (metrics, td_abs) = jax.lax.scan(step, state, {k: batch[k] for k in TRANSITION + ("weight",)})
        return state, {k: jnp.mean(v) for k, v in metrics.items()}, td_abs


class ReplayIntake(EpisodeCounts):
    """The trainer's intake of replay messages: each is one update; env steps, episodes and the
    replay ratio are counted from what the buffers report (the interface of `intake.SampleIntake`)."""

    def __init__(self, settings: BufferSettings, buffers: int, stats: Mapping[str, str]):
        super().__init__(stats)
        self.s = settings
        self.learning_starts = settings.learning_starts * buffers     # env steps before any buffer serves
        self.samples = 0
        self.interval_steps = self.interval_samples = 0
        self.buffer_size: Dict[int, int] = {}
        self.priority_updates: Dict[int, int] = {}
        self.held_ms: Dict[int, int] = {}
        self.batch: Optional[Dict[str, np.ndarray]] = None
        self.source = -1

    @property
    def ready(self) -> bool:
        return self.batch is not None

    def take(self, sample, version: int) -> None:
        data, counts = sample.data, sample.data["counts"]
        steps = int(counts[ReplayCount.ENV_STEPS])
        self.env_steps += steps
        self.interval_steps += steps
        self.pending[0] += steps
        self.env_resets += int(counts[ReplayCount.ENV_RESETS])
        self.buffer_size[sample.source] = int(counts[ReplayCount.SIZE])
        self.priority_updates[sample.source] = int(counts[ReplayCount.PRIORITY_UPDATES])
        self.held_ms[sample.source] = int(counts[ReplayCount.HELD_MS])
        self.count_episodes(data)
        self.samples += self.s.per_message
        self.interval_samples += self.s.per_message
        self.batch, self.source = data, sample.source

    def take_batch(self):
        batch, self.batch = self.batch, None
        return batch

    def achieved(self) -> Optional[float]:
        """Samples trained on per env step since the buffers started serving."""
        counted = self.env_steps - self.learning_starts
        return self.samples / counted if counted > 0 else None

    def interval(self) -> Dict[str, Any]:
        row = {"episode_return": float(np.mean(self.interval_returns)) if self.interval_returns else None,
               "replay_ratio": self.interval_samples / self.interval_steps if self.interval_steps else None,
               "replay_ratio_target": self.s.ratio, "buffer_size": sum(self.buffer_size.values()),
               "priority_updates": sum(self.priority_updates.values()),
               "actors_held_back_s": sum(self.held_ms.values()) / 1000,
               "nonfinite_env_resets": self.env_resets, **self.episode_stats.flush()}
        self.interval_returns, self.interval_steps, self.interval_samples = [], 0, 0
        return row

    def counters(self) -> Dict[str, Any]:
        return {"env_resets": self.env_resets, "last100": [float(x) for x in self.last100]}

    def restore(self, meta: Mapping[str, Any]) -> None:
        self.env_resets = int(meta.get("env_resets", 0))
        self.last100.extend(meta.get("last100", []))


@dataclasses.dataclass
class ReplayTrainerStreams(TrainerStreams):
    priorities: Dict[int, Any] = dataclasses.field(default_factory=dict)   # buffer rank -> priority poster


class ReplayTrainerWorker(TrainerWorker):
    """A trainer learning from replay messages; sends priorities back to the buffer that sampled."""

    def __init__(self, codec, state, update, streams: ReplayTrainerStreams, parts: TrainerParts, cfg,
                 start_time: Optional[float] = None):
        super().__init__(codec, state, update, streams, parts, cfg, start_time)
        self.grad_steps = parts.intake.s.batches_per_message
        self.priorities_sent = self.priorities_dropped = 0
        self.fin_sent = False

    def _apply(self, batch):
        self.state, metrics, td_abs = self.update(self.state, {k: batch[k] for k in TRANSITION + ("weight",)})
        if self.intake.s.prioritized:
            td_abs = np.asarray(td_abs)
            poster = self.streams.priorities[self.intake.source]
            i = poster.acquire()
            if i is None:                  # the buffer has not taken the previous ones yet
                self.priorities_dropped += td_abs.size
            else:
                view = poster.views[i]
                view["id"][...] = batch["id"]
                view["priority"][...] = td_abs
                poster.post(i, self.version)
                self.priorities_sent += td_abs.size
        return metrics

    def _drain(self) -> bool:
        if not self.fin_sent and not any(p.pending() for p in self.streams.priorities.values()):
            for buffer in self.streams.sources:       # no more priorities: the buffers may close
                self.control.send_fin(buffer)
            self.fin_sent = True
        return super()._drain()

    def summary(self) -> Dict[str, Any]:
        """Every trainer calls it (a gather): the replay figures are sums over all trainers' buffers."""
        out = super().summary()
        intake = self.intake
        own = np.array([intake.samples, intake.env_steps, intake.learning_starts,
                        sum(intake.priority_updates.values()), self.priorities_sent, self.priorities_dropped,
                        sum(intake.buffer_size.values()), sum(intake.held_ms.values())], np.float64)
        every = self.sync.gather(own)
        if every is None:                  # not trainer 0
            return out
        samples, steps, starts, applied, sent, dropped, size, held_ms = np.sum(every, axis=0)
        out.update({"replay_ratio": samples / (steps - starts) if steps > starts else None,
                    "replay_ratio_target": intake.s.ratio,
                    "replay_ratio_overall": samples / steps if steps else None,
                    "samples_trained": int(samples), "gradient_steps": self.version * self.grad_steps,
                    "prioritized": intake.s.prioritized,
                    "priority_updates_applied": int(applied), "priorities_sent": int(sent),
                    "priorities_dropped": int(dropped), "buffer_size": int(size), "actors_held_back_s": held_ms / 1000})
        return out


def trainer_stage(plan, rank: int, transport, algo, publisher):
    """The replay parts of trainer `rank` (`build._trainer` wires the rest, as for every trainer):
    (streams, intake, jitted update, worker class). Its own buffers serve it; with several trainers,
    gradients are averaged across them in every gradient step (`algo` built with `grad_reduce`)."""
    L, s = plan.layout, plan.replay
    buffers = L.sources_of(rank)
    streams = ReplayTrainerStreams(
        transport.consumer(rank, plan.replay_batches, 2 * len(buffers) + 2), publisher,
        transport.control(rank), buffers, L.policies + L.buffers + L.actors,
        priorities={b: transport.poster(rank, b, plan.priorities, 8, stream="priorities") for b in buffers}
        if s.prioritized else {})
    return streams, ReplayIntake(s, len(buffers), plan.episode_stats), jax.jit(algo.update), ReplayTrainerWorker


def build_buffer(plan, rank: int, transport, ctx):
    """The replay buffer worker of `rank`: its actors' rollouts in, replay messages to its trainer."""
    from srljax.dataflow.roles.buffer import ReplayBufferWorker, ReplayStreams
    from srljax.dataflow.wire.schema import action_spec

    d, L, s, spec = plan.d, plan.layout, plan.replay, plan.spec
    sources, sink = L.sources_of(rank), L.sink_of(rank)
    streams = ReplayStreams(transport.consumer(rank, plan.samples, 2 * len(sources) + 2),
                            transport.poster(rank, sink, plan.replay_batches, d.send_slots + 1),
                            transport.consumer(rank, plan.priorities, 8, stream="priorities"),
                            transport.control(rank), sources, sink)
    act_shape, act_dtype = action_spec(spec.action_space)
    store = ReplayStore(s, spec.obs_shape, act_shape, act_dtype)
    steps = spec.T * spec.B
    ratio = RatioController(s.ratio, s.learning_starts, slack=2 * max(s.ratio * steps, s.per_message))
    return ReplayBufferWorker(streams, store, ratio, steps, plan.cfg.seed * 7919 + rank)
