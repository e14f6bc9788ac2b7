"""Policy worker (batched, jitted inference for many actors) and the inline policy (inside an actor).

Both read the parameter stream: a flat float32 vector that `ParamCodec` turns back into the
learner's `PolicyParams` pytree. Both call the learner's `act(policy_params, obs, key)`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from srljax.dataflow.launch import supervisor
from srljax.dataflow.wire.schema import META, BatchSpec, Header
from srljax.dataflow.wire.streams import InferenceServer, ParamReader


def example_batch(spec: BatchSpec, packer=None) -> Dict[str, np.ndarray]:
    """Zeros shaped like one posted sample (what `algo.init` needs to size its state); packed
    observations (`multiagent.ObsPacker`) as the dicts the learner reads."""
    from srljax.dataflow.roles.multiagent import learner_batch
    layout = spec.samples()
    return learner_batch({name: np.zeros(*layout.spec[name]) for name in spec.learner_fields()}, packer)


@dataclasses.dataclass
class PolicyStreams:
    """A policy worker's ends: requests in and replies out, parameters in, STOP/FIN."""

    server: InferenceServer
    reader: ParamReader
    control: Any
    clients: Sequence[int]           # the actors it serves


class ParamCodec:
    """Policy parameters <-> one flat float32 vector (the parameter stream's payload).

    With `init_state` (trainers) the learner state is initialised for real; readers only need
    the pytree's structure, which `jax.eval_shape` gives without computing (or compiling) anything.
    """

    def __init__(self, algo, example: Dict[str, np.ndarray], seed: int, init_state: bool = True):
        key = jax.random.PRNGKey(seed)
        if init_state:
            self.template_state = jax.jit(algo.init)(key, example)
            policy = algo.policy_params(self.template_state)
        else:
            self.template_state = None
            shapes = jax.eval_shape(lambda k: algo.policy_params(algo.init(k, example)), key)
            policy = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
        flat, self._unravel = ravel_pytree(policy)
        self.size = int(flat.size)
        self._flatten = jax.jit(lambda state: ravel_pytree(algo.policy_params(state))[0].astype(jnp.float32))
        self.unflatten = jax.jit(self._unravel)

    def flatten(self, state) -> np.ndarray:
        return np.asarray(self._flatten(state))


def _jit_act(algo, recurrent=None):
    """The jitted policy call on a request batch -> dict of reply fields. With `recurrent` (a
    `multiagent.RequestCodec`), request rows [N, A, width] carry each agent's packed observation,
    carry and episode-start flag, and the reply carries the next carry. A recurrent policy's step
    skips the critic (the reply's value is 0): the learner recomputes values when it prepares a
    batch, and on a CPU the critic would cost as much again as the policy."""
    def act(params, obs, key, count):
        key = jax.random.fold_in(key, count)
        if recurrent is None:
            action, logp, value = algo.act(params, obs, key)
            return {"action": action, "logp": logp.astype(jnp.float32), "value": value.astype(jnp.float32)}
        N, A = obs.shape[:2]
        o, state, first = recurrent.unpack(obs)
        action, logp, value, state = algo.act_step(params, o, state, first, key, value=False)
        return {"action": action.reshape((N, A) + action.shape[1:]), "logp": logp.reshape(N, A).astype(jnp.float32),
                "value": value.reshape(N, A).astype(jnp.float32), "state": state.reshape(N, A, -1)}
    return jax.jit(act)


def batch_buckets(most: int):
    """Request counts a policy worker compiles its call for: powers of two below `most`, and `most`."""
    sizes, n = [], 1
    while n < most:
        sizes.append(n)
        n *= 2
    return tuple(sizes) + (most,)


class PolicyWorker:
    """Answers many actors' requests with one jitted call per turn. The call is compiled for a few
    request counts (`batch_buckets`: 1, 2, 4, ... and every client's every slot) and the waiting
    requests are padded to the next of them, so one waiting request does not pay for all."""

    def __init__(self, algo, codec: ParamCodec, streams: PolicyStreams, spec: BatchSpec, slots: int, seed: int,
                 recurrent=None):
        self.codec, self.server, self.reader, self.control = codec, streams.server, streams.reader, streams.control
        self.clients = set(streams.clients)
        self.B = spec.B
        n = len(self.clients) * slots
        self.batch = np.zeros((n * spec.B,) + spec.request_shape, np.float32)
        self.buckets = batch_buckets(n)
        self.compiled = set()
        self.act = _jit_act(algo, recurrent)
        self.key = jax.random.PRNGKey(seed)
        self.count = 0
        self.params: Any = None
        self.version = -1
        self.done = False
        self.calls = 0
        self.requests_served = 0

    def warmup(self) -> None:
        """Compile the act call for every bucket before the first request arrives."""
        params = self.codec.unflatten(jnp.zeros(self.codec.size))
        for n in self.buckets:
            jax.block_until_ready(self.act(params, self.batch[:n * self.B], self.key, 0))

    def poll(self) -> bool:
        progress = False
        new = self.reader.latest()
        if new is not None:
            self.params, self.version = self.codec.unflatten(jnp.asarray(new[0])), new[1]
            progress = True
        if self.params is None:
            return progress
        requests = self.server.requests()
        if requests:
            B = self.B
            for j, req in enumerate(requests):
                self.batch[j * B:(j + 1) * B] = req.obs
            self.count += 1
            n = next(b for b in self.buckets if b >= len(requests))
            if n not in self.compiled:
                supervisor.beat(grace=True)      # this request count compiles
                self.compiled.add(n)
            out = jax.device_get(self.act(self.params, self.batch[:n * B], self.key, self.count))
            for j, req in enumerate(requests):
                rows = slice(j * B, (j + 1) * B)
                self.server.reply(req, {k: v[rows] for k, v in out.items()}, self.version)
            self.calls += 1
            self.requests_served += len(requests)
            return True
        if self.control.stop_requested() and self.clients <= set(self.control.poll_fins()):
            self.close()
            self.done = True
            return True
        return progress

    def close(self) -> None:
        for end in (self.server, self.reader):
            close = getattr(end, "close", None)
            if close is not None:
                close()


class InlinePolicy:
    """The inference stream's client end, answered inside the actor (jax on the actor's CPU)."""

    def __init__(self, algo, codec: ParamCodec, reader: ParamReader, spec: BatchSpec, slots: int, seed: int,
                 recurrent=None):
        self.codec, self.reader = codec, reader
        reply = spec.replies()
        self._obs = [np.zeros((spec.B,) + spec.request_shape, np.float32) for _ in range(slots)]
        self._reply = [reply.views(reply.alloc()) for _ in range(slots)]
        self._ready = [False] * slots
        self._pending = [False] * slots
        self.act = _jit_act(algo, recurrent)
        self.key = jax.random.PRNGKey(seed)
        self.count = 0
        self.params: Any = None
        self.version = -1

    def _refresh(self) -> None:
        new = self.reader.latest()
        if new is not None:
            self.params, self.version = self.codec.unflatten(jnp.asarray(new[0])), new[1]

    def obs(self, slot: int) -> np.ndarray:
        return self._obs[slot]

    def request(self, slot: int) -> None:
        self._pending[slot] = True
        self._ready[slot] = False
        self._try_answer(slot)

    def _try_answer(self, slot: int) -> None:
        self._refresh()
        if self.params is None:
            return              # answered by a later `response` call, once parameters arrive
        self.count += 1
        if self.count == 1:
            supervisor.beat(grace=True)          # the first call compiles
        out = jax.device_get(self.act(self.params, self._obs[slot], self.key, self.count))
        views = self._reply[slot]
        for k, v in out.items():
            views[k][...] = v
        views[META][Header.VERSION] = self.version
        self._pending[slot], self._ready[slot] = False, True

    def refresh(self) -> None:
        """Take the newest parameters if any arrived (the actor calls this every turn, also while
        backpressure holds it, so the parameter stream keeps flowing)."""
        self._refresh()

    def close(self) -> None:
        close = getattr(self.reader, "close", None)
        if close is not None:
            close()

    def response(self, slot: int) -> Optional[Dict[str, np.ndarray]]:
        if self._pending[slot]:
            self._try_answer(slot)
        if not self._ready[slot]:
            return None
        self._ready[slot] = False
        return self._reply[slot]
