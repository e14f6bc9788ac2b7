"""Fused mode (Podracer's "Anakin"): env, inference and learning in one jitted program per device.

Per update and per device: a rollout of T steps of the local envs (`lax.scan`), then the learner's
update (GAE, epochs, minibatches), with gradients and normaliser statistics averaged over devices
by `pmean`. The per-device program runs under `jax.shard_map` over a one-axis `Mesh` of the local
devices (`jit` of the whole; state arrays carry a leading device axis). A run is a sequence of
`chunk(n)` calls, each `n` updates inside one `while_loop` that returns summed metrics; the host
loop (`fused.loop.train`) logs between chunks.

A recurrent policy (`learner.RecurrentModel`: `network.core`, or an env's entity observations)
carries its state across steps and updates (`FusedState.memory`: the carry and the next step's
`first` flag), zeroed where an episode starts; the rollout stores `first` per step and the carry
at the start of each chunk of `rollout.chunk_len` steps, as the distributed actors do, and the
learner trains on whole chunks (`learners.recurrent`).
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from srljax import envs
from srljax.dataflow.fused.loop import AXIS, RING, device_index, record_episodes, ring_mean
from srljax.dataflow.fused.population import (MemberAlgorithm, member_rows, members_of, population_size, programs,
                                              seeds_for)
from srljax.envs.core import EPISODE_FIGURES, JaxEnv, State
from srljax.envs.spaces import Box
from srljax.errors import NonFiniteError, UserError
from srljax.learners.learner import Learner, LearnerState


@struct.dataclass
class FusedState:
    learner: LearnerState
    env: State
    key: jax.Array            # per device: action sampling
    ring: jax.Array           # [RING // devices] returns of the latest completed episodes
    ring_ptr: jax.Array
    ring_count: jax.Array
    env_steps: jax.Array      # global, identical on every device
    memory: Optional[tuple] = None   # recurrent policies: (carry [B, S], first [B]); None: feedforward


class FusedTrainer(MemberAlgorithm):
    """Builds the env, the learner and the chunk function, sharded over the local devices, for one config."""

    def __init__(self, cfg, loss: Optional[Callable] = None, devices=None, env=None):
        """`env`: a user's JAX env object in place of `cfg.env.id` (`srljax.envs.custom`)."""
        self.cfg = cfg
        self.devices = list(devices or jax.local_devices())
        n_dev = len(self.devices)
        if cfg.env.num_envs % n_dev:
            raise UserError(f"env.num_envs={cfg.env.num_envs} does not split evenly over {n_dev} devices; "
                            f"use a multiple of {n_dev}")
        self.local_envs = cfg.env.num_envs // n_dev
        # On one device there is nothing to average: no collectives at all (XLA's CPU all-reduce
        # over a one-device group is not free, and runs several times per gradient step).
        self.axis = AXIS if n_dev > 1 else None
        if env is None:
            self.env: JaxEnv = envs.make(cfg.env.id, num_envs=self.local_envs, **cfg.env.kwargs)
        else:
            from srljax.envs.custom import jax_env
            self.env = jax_env(env, self.local_envs)
        self.T = cfg.rollout.rollout_len
        self.stat_names = dict(getattr(self.env, "episode_stats", None) or {})   # episode_stat_NAME -> its log name
        self.agents = self.env.num_agents                      # multi-agent: [B, A, ...] per step
        self.agent_axis = (self.agents,) if self.agents else ()
        self._loss = loss
        self.algo: Learner = self._make_algo(cfg)     # learners.registry builds it (`MemberAlgorithm`)
        self.recurrent = bool(self.algo.model.recurrent)
        self.chunk_len = cfg.rollout.chunk_len or self.T
        self._check_minibatches(cfg)
        self.ring_size = max(1, -(-RING // n_dev))
        self.max_skips = cfg.rollout.max_nonfinite_updates * cfg.ppo.epochs * cfg.ppo.minibatches
        self.mesh = Mesh(np.array(self.devices), (AXIS,))
        self.members = population_size(cfg)          # a population (`seeds`, `sweep`): `fused.population`
        self.labels = members_of(cfg)
        self._init, chunks = programs(self, self._init_device, {0: self._chunk_device}, (P(AXIS), P()))
        self._chunk = chunks[0]

    def _check_minibatches(self, cfg) -> None:
        """One line for minibatches that do not split a device's batch: a feedforward model's split
        the rollout's steps, a recurrent one's the (env, agent) columns' chunks."""
        M = getattr(getattr(self.algo, "settings", None), "minibatches", None)
        if M is None:
            return
        if not self.recurrent and self.T % M:
            raise UserError(f"rollout.rollout_len ({self.T}) must divide into ppo.minibatches ({M}) equal parts")
        if self.recurrent:
            chunks = self.local_envs * (self.agents or 1) * (self.T // self.chunk_len)
            if chunks % M:
                raise UserError(f"a device's {chunks} chunks ({self.local_envs} envs x {self.agents or 1} agents x "
                                f"{self.T // self.chunk_len} chunks of rollout.chunk_len={self.chunk_len}) do not "
                                f"split into ppo.minibatches ({M}) equal parts")

    # -- per device ----------------------------------------------------------------------------
    def _init_device(self, seed):
        key = jax.random.PRNGKey(seed)
        learner_key, env_key, act_key = jax.random.split(key, 3)
        dev = device_index(self.axis)
        env_state = self.env.reset(jax.random.fold_in(env_key, dev))
        example = self._rollout_shapes(env_state)
        learner = self.algo.init(learner_key, example)
        zero = jnp.zeros((), jnp.int32)
        memory = None
        if self.recurrent:           # every env starts an episode: first = 1
            memory = (self.algo.initial_state(self.local_envs * (self.agents or 1)),   # a carry per (env, agent)
                      jnp.ones((self.local_envs,), jnp.float32))
        return FusedState(learner=learner, env=env_state, key=jax.random.fold_in(act_key, dev),
                          ring=jnp.zeros((self.ring_size,), jnp.float32), ring_ptr=zero, ring_count=zero,
                          env_steps=jnp.zeros((), jnp.int32), memory=memory)

    def _rollout_shapes(self, env_state):
        """A one-step batch with the rollout's structure (zeros), for `init`."""
        space = self.env.action_space
        cols = (1, self.local_envs) + self.agent_axis
        action = jnp.zeros(cols + space.shape, jnp.float32 if isinstance(space, Box) else jnp.int32)
        zeros, per_env = jnp.zeros(cols, jnp.float32), jnp.zeros((1, self.local_envs), jnp.float32)
        obs = jax.tree.map(lambda x: x[None], env_state.obs)
        return {"obs": obs, "action": action, "logp": zeros, "reward": zeros,
                "terminated": zeros if self.env.agent_dones else per_env,
                "truncated": per_env, "final_obs": obs}

    def _rollout(self, policy, env_state, key, memory=None):
        # Reset states for all T steps drawn in one batched call (`JaxEnv.presample`).
        env_state, pre = self.env.presample(env_state, self.T)
        if memory is not None:
            return self._recurrent_rollout(policy, env_state, key, pre, memory)

        def step(state, xs):
            k, fresh = xs
            action, logp, value = self.algo.act(policy, state.obs, k)
            nxt = self.env.step(state, action) if fresh is None else self.env.step(state, action, fresh)
            out, ep = self._step_record(state, nxt, action, logp)
            return nxt, ({**out, "obs_value": value}, ep)

        env_state, (batch, ep) = jax.lax.scan(step, env_state, (jax.random.split(key, self.T), pre))
        return env_state, batch, ep

    @staticmethod
    def _step_record(state, nxt, action, logp):
        """What the batch keeps of one step, and (returns, ended, {team return key: returns}) of the
        episodes that ended on it."""
        m = nxt.metrics
        terminated = nxt.done
        if "agent_done" in m:    # [B, A]: an agent's own end (killed) before its episode's
            terminated = terminated[:, None] | m["agent_done"]
        out = {"obs": state.obs, "action": action, "logp": logp, "reward": nxt.reward,
               "terminated": terminated.astype(jnp.float32), "truncated": nxt.truncated.astype(jnp.float32),
               "final_obs": nxt.final_obs}
        if "learn" in m:         # agents whose steps are not learned from (absent agents, random opponents)
            out["learn"] = m["learn"]
        teams = {k: v for k, v in m.items() if k.startswith(EPISODE_FIGURES)}
        return out, (m["episode_return"], m["episode_ended"], teams)

    def _recurrent_rollout(self, policy, env_state, key, pre, memory):
        """The rollout of a recurrent policy: (env state, batch with `first` [T, B] and `state`
        [T / chunk_len, B, (A,) S], episode figures, memory after the last step). A multi-agent
        env's (env, agent) pairs act as B * A columns, each with its own carry."""
        B, A = self.local_envs, self.agents or 1
        cols = lambda x: x.reshape((B * A,) + x.shape[1 + len(self.agent_axis):])          # noqa: E731
        back = lambda x: x.reshape((B,) + self.agent_axis + x.shape[1:])                   # noqa: E731

        def step(carry, xs):
            state, h, first = carry
            k, fresh = xs
            action, logp, _, h_next = self.algo.act_step(policy, jax.tree.map(cols, state.obs), h,
                                                         jnp.repeat(first, A), k, value=False)
            action, logp = back(action), back(logp)
            nxt = self.env.step(state, action) if fresh is None else self.env.step(state, action, fresh)
            out, ep = self._step_record(state, nxt, action, logp)
            # the next step starts an episode where one ended (EpisodeStats' flag, computed once)
            return (nxt, h_next, nxt.metrics["episode_ended"]), ({**out, "first": first, "state": back(h)}, ep)

        (env_state, h, first), (batch, ep) = jax.lax.scan(step, (env_state,) + tuple(memory),
                                                          (jax.random.split(key, self.T), pre))
        batch["state"] = batch["state"][:: self.chunk_len]         # the carry at each chunk's start
        return env_state, batch, ep, (h, first)

    def _one_update(self, fs: FusedState):
        key, k = jax.random.split(fs.key)
        policy = self.algo.policy_params(fs.learner)
        memory = fs.memory
        if self.recurrent:
            env_state, batch, (ep_ret, ep_end, ep_teams), memory = self._rollout(policy, fs.env, k, fs.memory)
        else:
            env_state, batch, (ep_ret, ep_end, ep_teams) = self._rollout(policy, fs.env, k)
        env_ids = device_index(self.axis) * self.local_envs + jnp.arange(self.local_envs)
        learner, metrics = self.algo.update(fs.learner, batch, env_ids)
        fs = fs.replace(learner=learner, env=env_state, key=key, memory=memory,
                        env_steps=fs.env_steps + self.T * self.cfg.env.num_envs)
        fs, ret_sum, count = record_episodes(fs, ep_ret, ep_end, self.ring_size, self.axis)
        teams = {f"{name}_sum": jnp.sum(r * ep_end) for name, r in ep_teams.items()}     # per team, summed
        if self.axis is not None and teams:
            teams = jax.lax.psum(teams, self.axis)
        return fs, {**metrics, "episode_return_sum": ret_sum, "episodes": count, **teams}

    def _chunk_device(self, fs: FusedState, n_updates):
        metric_shapes = jax.eval_shape(self._one_update, fs)[1]
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes)

        def cond(carry):
            i, fs, _ = carry
            if self.members:         # the count alone: a per-member test would make vmap select the
                return i < n_updates  # whole state each update (7% of a 16-seed CartPole run); `check` stops
            return (i < n_updates) & (fs.learner.consecutive_skips < self.max_skips)

        def body(carry):
            i, fs, acc = carry
            fs, m = self._one_update(fs)
            return i + 1, fs, jax.tree.map(jnp.add, acc, m)

        done, fs, acc = jax.lax.while_loop(cond, body, (jnp.zeros((), jnp.int32), fs, zeros))
        return fs, acc, done

    # -- host ----------------------------------------------------------------------------------
    def init(self, seed: int) -> FusedState:
        self.labels = members_of(self.cfg, seed)     # a population's member m: seed + m % seeds
        return self._init(seeds_for(seed, len(self.devices), self.members, self.cfg.seeds), *self.sweep_args)

    def chunk(self, fs: FusedState, n_updates: int):
        """Run `n_updates` updates; returns (state, metrics for the interval as host floats; a
        population's: `population.member_rows`)."""
        fs, acc, done = self._chunk(fs, jnp.asarray(n_updates, jnp.int32), *self.sweep_args)
        acc = jax.tree.map(lambda x: np.asarray(x)[0], acc)
        return fs, member_rows(acc, self.labels, self._interval, per_member=np.asarray(done)[0])

    def _interval(self, acc, done):
        """One run's interval metrics from its summed chunk metrics and its update count; an env's
        `episode_stat_NAME` is logged under the name its `episode_stats` gives NAME, if any."""
        done = int(done)
        n = max(done, 1)
        out = {k: float(v) / n for k, v in acc.items()
               if k not in ("episode_return_sum", "episodes", "skipped_steps") and not k.endswith("_sum")}
        out["episodes"] = int(acc["episodes"])
        out["episode_return"] = float(acc["episode_return_sum"] / acc["episodes"]) if acc["episodes"] else None
        for k in acc:                   # team returns (episode_return_team{k}), an env's episode_stat_*
            if k.startswith(EPISODE_FIGURES) and k.endswith("_sum"):
                name = k[: -len("_sum")]
                name = self.stat_names.get(name[len("episode_stat_"):], name) if name.startswith("episode_stat_") else name
                out[name] = float(acc[k] / acc["episodes"]) if acc["episodes"] else None
        out["skipped_steps"] = int(acc["skipped_steps"])
        out["updates"] = done
        return out

    # the host loop's view (`train`): progress in updates of `unit_env_steps` env steps
    unit_name = "update"

    @property
    def unit_env_steps(self) -> int:
        return self.cfg.steps_per_update()

    @property
    def total_units(self) -> int:
        return self.cfg.num_updates()

    def progress(self, fs: FusedState) -> int:
        """Updates taken (waits for `fs`; a population: its slowest member's)."""
        return int(np.min(np.asarray(fs.learner.updates)[0]))

    policy_version = progress

    def check(self, fs: FusedState, done: int) -> None:
        """Stop the run once `max_skips` gradient steps in a row were not finite."""
        skips = np.atleast_1d(np.asarray(fs.learner.consecutive_skips)[0])
        if skips.max() >= self.max_skips:
            worst = int(np.argmax(skips))
            who = f" of member {worst} ({self.labels[worst]})" if self.members else ""
            raise NonFiniteError(f"stopped at update {done}: {int(skips.max())} consecutive gradient steps{who} had "
                                 f"non-finite gradients (limit rollout.max_nonfinite_updates="
                                 f"{self.cfg.rollout.max_nonfinite_updates} updates)")

    def summary_counts(self, fs: FusedState) -> dict:
        return {"updates": self.progress(fs), "devices": len(self.devices),
                "skipped_steps": int(np.sum(np.asarray(fs.learner.skipped)[0]))}

    def last_returns(self, fs: FusedState) -> Optional[float]:
        """Mean return of the latest completed episodes (up to 100 over all devices)."""
        return ring_mean(fs)

    def restore(self, state: dict, seed: int) -> FusedState:
        """A FusedState from a checkpoint's state dict.

        The learner (parameters, optimiser, normaliser, counters) always comes back; the env
        states, sampling keys and episode ring come back when the device count (and the env
        adapter's state layout) is unchanged, and start afresh otherwise (the run goes on from
        the same update and env-step count).
        """
        from srljax.checkpoint import CheckpointError, into
        fresh = jax.tree.map(np.asarray, self.init(seed))
        n_dev = len(self.devices)
        learner0 = into(jax.tree.map(lambda x: x[0], fresh.learner),
                        jax.tree.map(lambda x: np.asarray(x)[0], state["learner"]), "checkpointed learner")
        learner = jax.tree.map(lambda x: np.stack([x] * n_dev), learner0)
        stored_devices = np.shape(state["env_steps"])[0]
        if stored_devices == n_dev:
            try:
                fs = into(fresh, state, "checkpointed run state")
                return fs.replace(learner=learner)
            except CheckpointError:
                pass            # env states of another layout (an older adapter's): start afresh
        steps = np.broadcast_to(np.asarray(state["env_steps"])[0], np.shape(fresh.env_steps)).astype(np.int32)
        return fresh.replace(learner=learner, env_steps=steps)

    def host_learner(self, fs: FusedState) -> LearnerState:
        """The learner state of device 0 as host numpy (replicas are identical)."""
        return jax.tree.map(lambda x: np.asarray(x[0]), fs.learner)
