"""The batched CPU hide-and-seek env (srljax.envs.vector.VectorEnv).

Each env owns a copy of its variant's compiled model (walls and box kinds differ per episode) and an
MjData; all rule and observation arithmetic runs once per batch on [E, ...] arrays. The only Python
loops per step are one `mj_step` and one `mj_multiRay` per agent per env, plus weld switches when a
grab or lock starts or ends.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, Dict, List, Optional

import mujoco
import numpy as np

from srljax.envs.hide_and_seek import observations as O
from srljax.envs.hide_and_seek import rules
from srljax.envs.hide_and_seek.layout import CUBE_HALF, LONG_HALF, RAMP_HALF, Layout, draw_layout
from srljax.envs.hide_and_seek.scene import (SUBSTEPS, VARIANTS, Variant, apply_layout,
                                             compile_variant, scene_ids)
from srljax.envs.hide_and_seek.stats import EPISODE_STATS, plot_stage_stats
from srljax.envs.spaces import MultiDiscrete

LayoutFn = Callable[[np.random.Generator], Layout]


def _quat_z(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


class HideAndSeekVecEnv:
    """`num_envs` hide-and-seek games stepped in lockstep, with auto-reset at the horizon.

    Observations: dict of float32 arrays [num_envs, num_agents, ...] (see observations.py and
    docs/hide_and_seek.md); actions: int [num_envs, num_agents, 5] in MultiDiscrete(11, 11, 11, 2, 2);
    rewards [num_envs, num_agents]; terminated always False; truncated True at the horizon.
    Dataflow traits (`srljax.envs.vector.MultiAgentVectorEnv`): `teams()`, `presence_key`,
    `episode_stats` and `plot_episode_stats`.
    """

    presence_key = "agent_exists"
    episode_stats = EPISODE_STATS
    plot_episode_stats = staticmethod(plot_stage_stats)

    def __init__(self, variant: str | Variant = "quadrant", num_envs: int = 1, seed: int = 0,
                 horizon: Optional[int] = None, prep_steps: Optional[int] = None,
                 layout_fn: Optional[LayoutFn] = None):
        if isinstance(variant, str):
            if variant not in VARIANTS:
                raise ValueError(f"unknown hide-and-seek variant {variant!r}; expected one of "
                                 f"{sorted(VARIANTS)}")
            variant = VARIANTS[variant]
        if horizon is not None:
            variant = dataclasses.replace(variant, horizon=int(horizon))
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.spec = v = variant
        self.prep_steps = v.prep_steps if prep_steps is None else int(prep_steps)
        self.num_envs = E = int(num_envs)
        self.num_agents = A = v.max_agents
        self.num_boxes, self.num_ramps = B, R = v.max_boxes, v.max_ramps
        self._seed = seed
        self._layout_fn = layout_fn or (lambda rng: draw_layout(v.name, rng))
        base = compile_variant(v)
        self.models: List[mujoco.MjModel] = [copy.copy(base) for _ in range(E)]
        self.datas: List[mujoco.MjData] = [mujoco.MjData(m) for m in self.models]
        self.ids = ids = scene_ids(base, v)
        N, Ob = v.n_bodies, v.n_objects
        self.q = np.zeros((E, N, 4))
        self.qd = np.zeros((E, N, 4))
        self.t = np.zeros(E, dtype=np.int64)
        self.agent_exists = np.zeros((E, A), dtype=bool)
        self.hider = np.zeros((E, A), dtype=bool)
        self.obj_exists = np.zeros((E, Ob), dtype=bool)
        self.obj_half = np.tile(np.array([CUBE_HALF] * B + [RAMP_HALF] * R, dtype=np.float64).reshape(Ob, 3), (E, 1, 1))
        self.held = -np.ones((E, A), dtype=np.int64)
        self.lock_team = -np.ones((E, Ob), dtype=np.int64)
        self.locker = -np.ones((E, Ob), dtype=np.int64)
        self.seen_obj = np.zeros((E, A, Ob), dtype=bool)
        self.vis = np.zeros((E, A, N), dtype=bool)
        self.lidar = np.zeros((E, A, O.N_LIDAR))
        self.lockable_kind = np.array([True] * B + [v.ramp_lockable] * R, dtype=bool)
        self.caster = O.RayCaster(self.models, self.datas, A, N, ids.bodies[:A], ids.geom_body_slot)
        self._exists_changed = True
        self._others = O.others_index(A)
        self._index_e = np.arange(E)[:, None]
        self._pairs = list(zip(self.models, self.datas))
        self._step_time = SUBSTEPS * base.opt.timestep
        self._q_rows = list(self.q.reshape(E, N * 4))
        self._qd_rows = list(self.qd.reshape(E, N * 4))
        self._not_self = np.ones((A, N), dtype=bool)
        self._not_self[np.arange(A), np.arange(A)] = False
        self._stats = _EpisodeStats(E, A, Ob)
        self._rngs: Optional[List[np.random.Generator]] = None
        self.observation_space = O.observation_space(A, B, R)
        self.action_space = MultiDiscrete(rules.NVEC)
        self.last_reward = np.zeros((E, A), dtype=np.float32)

    # ----------------------------------------------------------------------------- reset / step

    def reset(self, seed: Optional[int] = None) -> Dict[str, np.ndarray]:
        """Start a new episode in every env; env e draws its layouts from a generator seeded by
        (seed, e), so a batch is reproducible and its envs differ."""
        seed = self._seed if seed is None else seed
        self._rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(self.num_envs)]
        for e in range(self.num_envs):
            self._reset_env(e)
        return self._observe()

    def step(self, actions) -> tuple:
        if self._rngs is None:
            raise RuntimeError("call reset(seed) before step()")
        E, A = self.num_envs, self.num_agents
        act = rules.validate_actions(actions, E, A)
        in_prep = self.t < self.prep_steps
        active = self.agent_exists & ~(in_prep[:, None] & ~self.hider)
        ctrl = rules.movement(act) * active[..., None]
        self._manipulate((act[..., 3] == 1) & active, (act[..., 4] == 1) & active)
        ctrl = ctrl.reshape(E, A * 3)
        q, qd, step = self.q, self.qd, mujoco.mj_step
        for (m, d), c, qe, qde in zip(self._pairs, ctrl, self._q_rows, self._qd_rows):
            d.ctrl[:] = c
            step(m, d, SUBSTEPS)
            qe[:] = d.qpos
            qde[:] = d.qvel
        self.t += 1
        obs = self._observe()
        reward, seen = rules.team_reward(self.vis[:, :, :A], self.hider, self.agent_exists)
        penal, _ = rules.out_of_bounds(self.spec.name, q[:, :A, :2], self.agent_exists,
                                       q[:, A:, :2], self.obj_exists)
        reward = np.where(penal, rules.OOB_PENALTY, reward)
        reward = np.where(in_prep[:, None], 0.0, reward).astype(np.float32)
        self.last_reward = reward
        self._stats.add(reward, seen, ~in_prep)
        if self.prep_steps > 0:
            for e in np.flatnonzero(self.t == self.prep_steps):
                self._stats.end_prep(e, q[e, A:, :3], self.lock_team[e], self.obj_exists[e], self.num_boxes)
        # MuJoCo resets an MjData whose accelerations blow up (its clock restarts): such an
        # episode ends here, flagged "unstable" (OpenAI discarded them: DiscardMujocoExceptionEpisodes)
        unstable = np.array([d.time for d in self.datas]) < self.t * self._step_time - 1e-6
        truncated = (self.t >= self.spec.horizon) | unstable
        terminated = np.zeros(E, dtype=bool)
        info: Dict[str, Any] = {"final_obs": obs, "episodes": []}
        if truncated.any():
            for e in np.flatnonzero(truncated):
                ep = self._stats.finish(e, q[e, A:, :3], self.lock_team[e], self.obj_exists[e],
                                        self.num_boxes, self.hider[e], self.agent_exists[e], int(self.t[e]))
                ep["unstable"] = bool(unstable[e])
                info["episodes"].append(ep)
                self._reset_env(e)
            obs = self._observe()
        return obs, reward, terminated, truncated, info

    def close(self) -> None:
        """Drop the MuJoCo models and data (the env cannot be stepped afterwards)."""
        self.models, self.datas, self._pairs = [], [], []
        self.caster = None
        self._rngs = None

    # ----------------------------------------------------------------------------- internals

    def _reset_env(self, e: int, layout: Optional[Layout] = None) -> None:
        layout = layout if layout is not None else self._layout_fn(self._rngs[e])
        ex = apply_layout(self.models[e], self.datas[e], self.spec, self.ids, layout)
        B = self.num_boxes
        self.agent_exists[e], self.hider[e] = ex.agents, ex.hider
        self._exists_changed = True
        self.obj_exists[e] = np.concatenate([ex.boxes, ex.ramps])
        self.obj_half[e, :B] = np.where(ex.box_long[:, None], LONG_HALF, CUBE_HALF)
        self.held[e] = -1
        self.lock_team[e] = -1
        self.locker[e] = -1
        self.t[e] = 0
        d = self.datas[e]
        self.q[e].flat[:] = d.qpos
        self.qd[e].flat[:] = d.qvel
        self.seen_obj[e] = False
        self._stats.start(e, self.q[e, self.num_agents:, :3])

    @property
    def team(self) -> np.ndarray:
        """[E, A]: 1 hider, 0 seeker, -1 absent slot."""
        return np.where(self.agent_exists, self.hider.astype(np.int64), -1)

    def teams(self) -> np.ndarray:
        """[E, A] team of each agent slot in the current episodes: 1 hider, 0 seeker, -1 absent."""
        return self.team

    def _targets(self, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        """Sight-ray targets [E, N, 3]: body centres, the ramp's moved to its wedge's centroid."""
        tgt = self.q[:, :, :3].copy()
        r0 = self.num_agents + self.num_boxes
        if self.num_ramps:
            c = self.ids.ramp_centre
            tgt[:, r0:, 0] += cos[:, r0:] * c[0] - sin[:, r0:] * c[1]
            tgt[:, r0:, 1] += sin[:, r0:] * c[0] + cos[:, r0:] * c[1]
            tgt[:, r0:, 2] += c[2]
        return tgt

    def _observe(self) -> Dict[str, np.ndarray]:
        """Cast rays, update visibility and return the observation dict."""
        A = self.num_agents
        q = self.q
        self._cos = cos = np.cos(q[..., 3])
        self._sin = sin = np.sin(q[..., 3])
        origin = q[:, :A, :3]
        targets = self._targets(cos, sin)
        exists = np.concatenate([self.agent_exists, self.obj_exists], axis=1)
        cand = O.in_cone(origin, cos[:, :A], sin[:, :A], targets) & exists[:, None, :] & self._not_self
        cand &= self.agent_exists[:, :, None]
        if self._exists_changed:
            self.caster.set_exists(self.agent_exists)
            self._exists_changed = False
        lidar, vis = self.caster.cast(origin, targets, cand)
        self.vis = vis
        self.seen_obj = vis[:, :, A:]
        self.lidar = lidar
        prep = np.minimum(1.0, self.t / self.prep_steps) if self.prep_steps > 0 else np.ones(self.num_envs)
        size = 2 * self.obj_half
        return O.build_obs(q, self.qd, cos, sin, self.hider, self.agent_exists, self.obj_exists,
                           size, self.lock_team, self.locker, self.team, prep, vis, lidar,
                           self._others, self.num_boxes)

    def _manipulate(self, grab_bit: np.ndarray, lock_bit: np.ndarray) -> None:
        """Apply lock, unlock, grab and release decisions by switching weld constraints."""
        A, q = self.num_agents, self.q
        obj = q[:, A:]
        locked_any = (self.lock_team >= 0).any()
        if not (grab_bit.any() or lock_bit.any() or locked_any):
            if (self.held >= 0).any():
                self._release(self.held >= 0)
            return
        dist = rules.surface_distance(q[:, :A, :3], obj[..., :3], self._cos[:, A:], self._sin[:, A:],
                                      self.obj_half)
        target = rules.interaction_targets(dist, self.seen_obj, self.obj_exists)
        team = self.team
        lockable = self.obj_exists & self.lockable_kind
        new_lock, locker, unlock = rules.lock_decisions(target, lock_bit, team, self.lock_team, lockable)
        lock0, ob = self.ids.lock_eq0, self.spec.n_objects
        if unlock.any():
            for e, o in np.argwhere(unlock):
                self.datas[e].eq_active[lock0 + o] = 0
                self.lock_team[e, o] = -1
                self.locker[e, o] = -1
        if new_lock.any():
            for e, o in np.argwhere(new_lock):
                pose = obj[e, o]
                self.models[e].eq_data[lock0 + o, 3:10] = np.concatenate([pose[:3], _quat_z(pose[3])])
                self.datas[e].eq_active[lock0 + o] = 1
                self.lock_team[e, o] = team[e, locker[e, o]]
                self.locker[e, o] = locker[e, o]
        # one extra always-unlocked column, so that index -1 (nothing) reads False
        locked = np.concatenate([self.lock_team >= 0, np.zeros((self.num_envs, 1), bool)], axis=1)
        held = self.held
        ie = self._index_e
        release = (held >= 0) & (~grab_bit | locked[ie, held])
        if release.any():
            self._release(release)
        grab0 = self.ids.grab_eq0
        target_locked = locked[ie, target]
        new = grab_bit & (held < 0) & (target >= 0) & ~target_locked
        if new.any():
            for e, a in np.argwhere(new):
                o = target[e, a]
                pa, pb = q[e, a], obj[e, o]
                c, s = np.cos(pa[3]), np.sin(pa[3])
                dx, dy = pb[0] - pa[0], pb[1] - pa[1]
                rel = [c * dx + s * dy, -s * dx + c * dy, pb[2] - pa[2]]
                eq = grab0 + a * ob + o
                self.models[e].eq_data[eq, 3:10] = np.concatenate([rel, _quat_z(pb[3] - pa[3])])
                self.datas[e].eq_active[eq] = 1
                held[e, a] = o


    def _release(self, release: np.ndarray) -> None:
        """Switch off the grab welds of the agents marked in `release` [E, A]."""
        grab0, ob, held = self.ids.grab_eq0, self.spec.n_objects, self.held
        for e, a in np.argwhere(release):
            self.datas[e].eq_active[grab0 + a * ob + held[e, a]] = 0
            held[e, a] = -1


class _EpisodeStats:
    """Per-env accumulators for the stage statistics OpenAI logged (TrackStatWrapper)."""

    def __init__(self, E: int, A: int, Ob: int):
        self.start_pos = np.zeros((E, Ob, 3))
        self.ret = np.zeros((E, A))
        self.seen = np.zeros(E)
        self.rewarded = np.zeros(E)
        self.prep = [dict.fromkeys(("max_box_move_prep", "max_ramp_move_prep", "num_box_lock_prep",
                                    "num_ramp_lock_prep"), 0.0) for _ in range(E)]

    def start(self, e: int, obj_pos: np.ndarray) -> None:
        self.start_pos[e] = obj_pos
        self.ret[e] = 0.0
        self.seen[e] = 0.0
        self.rewarded[e] = 0.0
        self.prep[e] = dict.fromkeys(self.prep[e], 0.0)

    def add(self, reward: np.ndarray, seen: np.ndarray, rewarded: np.ndarray) -> None:
        self.ret += reward
        self.seen += seen & rewarded
        self.rewarded += rewarded

    def _moves(self, e, obj_pos, lock_team, exists, B):
        move = np.where(exists, np.linalg.norm(obj_pos - self.start_pos[e], axis=-1), 0.0)
        locked = (lock_team >= 0) & exists
        return (float(move[:B].max(initial=0.0)), float(move[B:].max(initial=0.0)),
                int(locked[:B].sum()), int(locked[B:].sum()))

    def end_prep(self, e, obj_pos, lock_team, exists, B) -> None:
        vals = self._moves(e, obj_pos, lock_team, exists, B)
        self.prep[e] = dict(zip(self.prep[e], vals))

    def finish(self, e, obj_pos, lock_team, exists, B, hider, agent_exists, length) -> Dict[str, Any]:
        box, ramp, nbox, nramp = self._moves(e, obj_pos, lock_team, exists, B)
        ret = self.ret[e]
        h, s = hider & agent_exists, ~hider & agent_exists
        out = {
            "return": float(ret[agent_exists].mean()),
            "length": length,
            "hider_return": float(ret[h].mean()) if h.any() else 0.0,
            "seeker_return": float(ret[s].mean()) if s.any() else 0.0,
            "n_hiders": int(h.sum()), "n_seekers": int(s.sum()),
            "max_box_move": box, "max_ramp_move": ramp, "num_box_lock": nbox, "num_ramp_lock": nramp,
            "hider_seen_frac": float(self.seen[e] / self.rewarded[e]) if self.rewarded[e] else 0.0,
        }
        out.update(self.prep[e])
        return out
