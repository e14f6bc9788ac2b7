"""Hide-and-seek as a JAX env (`hns_jax/quadrant`, `hns_jax/full`): the MuJoCo game's rules, actions,
observations and rewards (srljax/envs/hide_and_seek, docs/hide_and_seek.md) over the planar physics of
`physics.py` and the rays of `sight.py`; `jit`, `vmap` and `scan` trace it (envs.core.JaxEnv).

Per env: observations are the MuJoCo game's dict, each entry [A, ...] (A agent slots; see
`observation_space`), actions int [A, 5] in MultiDiscrete(11, 11, 11, 2, 2), rewards [A]; an episode
never terminates, it is truncated at the horizon. metrics: `learn` [A] (0 for absent slots and for a
random opponent's steps) and, at an episode's end, its stage statistics (`episode_stat_*`, the MuJoCo
game's `episode_stats`).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from srljax.envs.core import JaxEnv, State
from srljax.envs.hide_and_seek import rules as R
from srljax.envs.hide_and_seek.layout import AGENT_R, CUBE_HALF
from srljax.envs.hide_and_seek.observations import AGENT_FEATS, OBJECT_FEATS, observation_space, others_index
from srljax.envs.hide_and_seek.scene import VARIANTS, Variant
from srljax.envs.hide_and_seek.stats import EPISODE_STATS, plot_stage_stats
from srljax.envs.hns_jax import layouts as L
from srljax.envs.hns_jax import physics as P
from srljax.envs.hns_jax.geometry import unrotate
from srljax.envs.hns_jax.sight import observe_rays
from srljax.envs.spaces import MultiDiscrete

OBJ_Z = CUBE_HALF[2]
STAT_KEYS = ("max_box_move_prep", "max_ramp_move_prep", "num_box_lock_prep", "num_ramp_lock_prep",
             "max_box_move", "max_ramp_move", "num_box_lock", "num_ramp_lock", "hider_seen_frac",
             "hider_return", "seeker_return")


@struct.dataclass
class Game:
    """One env's game state (the adapter state inside `envs.core.State.inner`)."""

    world: P.World
    bodies: P.Bodies
    holds: P.Holds
    hider: jax.Array          # [A] bool
    lock_team: jax.Array      # [O] int: -1 unlocked, else the locking agent's team (1 hider, 0 seeker)
    locker: jax.Array         # [O] int: the agent that locked it, -1
    seen_obj: jax.Array       # [A, O] bool: objects each agent saw last step
    t: jax.Array              # int32
    opponent: jax.Array       # int32: the team playing random actions this episode, -1 none
    key: jax.Array
    start: jax.Array          # [O, 2] object positions at the episode's start
    prep_stats: jax.Array     # [4] box/ramp largest move and locks at the end of the preparation phase
    ret: jax.Array            # [A] this episode's summed rewards
    seen_steps: jax.Array     # rewarded steps in which a seeker saw a hider
    rewarded: jax.Array       # rewarded steps


class HideAndSeekJax(JaxEnv):
    """The hide-and-seek game of one variant ("quadrant" or "full") as a JAX env.

    Args:
        variant: "quadrant" (2 v 2, 80 steps) or "full" (1-3 v 1-3, 240 steps), or a `Variant`.
        horizon, prep_steps: the episode's length and its preparation phase (default: the variant's).
        layouts: how many starting layouts to draw into the bank (`layouts.py`), seed `layout_seed`.
        random_opponents: in this fraction of episodes one team, drawn at random, plays uniformly
            random actions and its steps are not learned from (`metrics["learn"]`).
    """

    episode_stats = EPISODE_STATS                         # logged as the MuJoCo game's (`stage/...`)
    plot_episode_stats = staticmethod(plot_stage_stats)   # stage_stats.png at the run's end

    def __init__(self, variant: str | Variant = "quadrant", horizon: Optional[int] = None,
                 prep_steps: Optional[int] = None, layouts: int = 4096, layout_seed: int = 0,
                 random_opponents: float = 0.0, bank: Optional[dict] = None):
        if isinstance(variant, str):
            if variant not in VARIANTS:
                raise ValueError(f"unknown hide-and-seek variant {variant!r}; expected one of {sorted(VARIANTS)}")
            variant = VARIANTS[variant]
        if horizon is not None:
            variant = dataclasses.replace(variant, horizon=int(horizon))
        if not 0.0 <= random_opponents <= 1.0:
            raise ValueError(f"random_opponents must be in [0, 1], got {random_opponents}")
        self.spec = v = variant
        self.name = f"hns_jax/{v.name}"
        self.prep_steps = v.prep_steps if prep_steps is None else int(prep_steps)
        self.horizon = v.horizon
        self.num_agents = A = v.max_agents
        self.num_boxes, self.num_ramps = v.max_boxes, v.max_ramps
        self.random_opponents = float(random_opponents)
        self.bank = {k: jnp.asarray(x) for k, x in (bank or L.bank(v, layouts, layout_seed)).items()}
        self.observation_space = observation_space(A, v.max_boxes, v.max_ramps)
        self.action_space = MultiDiscrete(R.NVEC)
        self.teams = (1,) * (A // 2) + (0,) * (A - A // 2) if v.name == "quadrant" else None
        self._others = jnp.asarray(others_index(A))
        self._ramp = jnp.asarray(np.arange(v.n_objects) >= v.max_boxes)
        self._lockable = jnp.asarray(np.array([True] * v.max_boxes + [v.ramp_lockable] * v.max_ramps))
        self._bounds = R.QUADRANT_BOUNDS if v.name == "quadrant" else R.FULL_BOUNDS

    # ----------------------------------------------------------------------------- reset

    def reset(self, key):
        k_layout, k_yaw, k_opp, k_next = jax.random.split(key, 4)
        i = jax.random.randint(k_layout, (), 0, self.bank["wall_on"].shape[0])
        lay = {k: x[i] for k, x in self.bank.items()}
        yaw = jax.random.uniform(k_yaw, (self.num_agents,), minval=-jnp.pi, maxval=jnp.pi)
        lay["agent_yaw"] = jnp.where(lay["agent_on"], yaw, 0.0)
        opp = jnp.int32(-1)
        if self.random_opponents:
            k1, k2 = jax.random.split(k_opp)
            opp = jnp.where(jax.random.uniform(k1) < self.random_opponents, jax.random.randint(k2, (), 0, 2), -1)
        return self.start(lay, k_next, opp)

    def start(self, lay: dict, key, opponent=-1) -> State:
        """The first state of the episode laid out by `lay` (one row of a layout bank: `layouts.py`)."""
        A, O = self.num_agents, self.spec.n_objects
        half = lay["half"]
        world = P.World(wall_c=lay["wall_c"], wall_h=lay["wall_h"], wall_top=lay["wall_top"], wall_on=lay["wall_on"],
                        half=half, ramp=self._ramp, inv_i=P.box_inertia_inv(half), agent_on=lay["agent_on"],
                        obj_on=lay["obj_on"])
        p = jnp.concatenate([lay["agent_pos"][:, :2], lay["obj_p"]], 0)
        yaw = jnp.concatenate([lay["agent_yaw"], lay["obj_yaw"]])
        bodies = P.Bodies(p=p, yaw=yaw, v=jnp.zeros_like(p), w=jnp.zeros_like(yaw),
                          base=lay["agent_pos"][:, 2] - AGENT_R, vz=jnp.zeros((A,)))
        holds = P.Holds(held=-jnp.ones((A,), jnp.int32), rel=jnp.zeros((A, 3)), locked=jnp.zeros((O,), bool),
                        lock_pose=jnp.zeros((O, 3)))
        game = Game(world=world, bodies=bodies, holds=holds, hider=lay["hider"], lock_team=-jnp.ones((O,), jnp.int32),
                    locker=-jnp.ones((O,), jnp.int32), seen_obj=jnp.zeros((A, O), bool), t=jnp.int32(0),
                    opponent=jnp.asarray(opponent, jnp.int32), key=key, start=lay["obj_p"],
                    prep_stats=jnp.zeros((4,)), ret=jnp.zeros((A,)), seen_steps=jnp.float32(0),
                    rewarded=jnp.float32(0))
        obs, game, _ = self._observe(game)
        zero = jnp.zeros((), bool)
        return State(obs=obs, reward=jnp.zeros((A,)), done=zero, truncated=zero, final_obs=obs,
                     metrics=self._metrics(game, zero), inner=game)

    # ----------------------------------------------------------------------------- step

    def step(self, state: State, action):
        g: Game = state.inner
        A = self.num_agents
        action = jnp.asarray(action, jnp.int32)
        if self.random_opponents:
            k, sub = jax.random.split(g.key)
            rand = jax.random.randint(sub, (A, 5), 0, jnp.asarray(R.NVEC))
            team = g.hider.astype(jnp.int32)
            action = jnp.where((team == g.opponent)[:, None], rand, action)
            g = g.replace(key=k)
        in_prep = g.t < self.prep_steps
        active = g.world.agent_on & ~(in_prep & ~g.hider)
        ctrl = (action[:, :3] - 5).astype(jnp.float32) * (R.ACTION_LIM / 5) * active[:, None]
        g = self._manipulate(g, (action[:, 3] == 1) & active, (action[:, 4] == 1) & active)
        g = g.replace(bodies=P.step(g.world, g.bodies, g.holds, ctrl, A), t=g.t + 1)
        obs, g, vis = self._observe(g)
        reward, seen = self._reward(g, vis)
        rewarded = ~in_prep
        g = g.replace(ret=g.ret + reward, seen_steps=g.seen_steps + (seen & rewarded), rewarded=g.rewarded + rewarded)
        g = g.replace(prep_stats=jnp.where(g.t == self.prep_steps, self._moves(g), g.prep_stats))
        truncated = g.t >= self.horizon
        return state.replace(obs=obs, final_obs=obs, reward=reward, done=jnp.zeros((), bool), truncated=truncated,
                             inner=g, metrics=self._metrics(g, truncated))

    def _reward(self, g: Game, vis):
        A, b = self.num_agents, g.bodies
        vis_aa = vis[:, :A]
        on = g.world.agent_on
        seeker = on & ~g.hider
        seen = jnp.any(vis_aa & seeker[:, None] & g.hider[None])
        hider_r = jnp.where(seen, -1.0, 1.0)
        reward = jnp.where(on, jnp.where(g.hider, hider_r, -hider_r), 0.0)
        lo, hi = self._bounds
        out = lambda xy: jnp.any((xy < lo) | (xy > hi), axis=-1)    # noqa: E731
        agent_out = out(b.p[:A]) & on
        if self.spec.name == "quadrant":
            obj_out = jnp.any(out(b.p[A:]) & g.world.obj_on)
            penal = (agent_out | obj_out) & on
        else:
            penal = agent_out
        reward = jnp.where(penal, R.OOB_PENALTY, reward)
        reward = jnp.where(g.t <= self.prep_steps, 0.0, reward)     # t counts the step just taken
        return reward.astype(jnp.float32), seen

    def _manipulate(self, g: Game, grab, lock):
        """Locks, unlocks, grabs and releases (the MuJoCo game's `_manipulate`, same order)."""
        A, O = self.num_agents, self.spec.n_objects
        b = g.bodies
        po, yo = b.p[A:], b.yaw[A:]
        # distance from each agent's centre to each object's box (ramps: their bounding cube), 3-D
        centre = jnp.concatenate([b.p[:A], (b.base + AGENT_R)[:, None]], -1)
        local = unrotate(centre[:, None, :2] - po[None], jnp.cos(yo)[None], jnp.sin(yo)[None])
        dz = centre[:, None, 2] - OBJ_Z
        half3 = jnp.concatenate([g.world.half, jnp.full((O, 1), OBJ_Z)], -1)
        gap = jnp.maximum(jnp.abs(jnp.concatenate([local, dz[..., None] * jnp.ones((1, O, 1))], -1)) - half3[None], 0.0)
        dist = jnp.sqrt(jnp.sum(gap * gap, -1))
        ok = (dist <= R.REACH) & g.seen_obj & g.world.obj_on[None]
        target = jnp.where(jnp.any(ok, -1), jnp.argmin(jnp.where(ok, dist, jnp.inf), -1), -1)
        team = jnp.where(g.world.agent_on, g.hider.astype(jnp.int32), -1)
        lockable = g.world.obj_on & self._lockable
        onehot = (target[:, None] == jnp.arange(O)[None]) & lockable[None]
        pressing = onehot & lock[:, None]
        locked = g.lock_team >= 0
        same = team[:, None] == g.lock_team[None]
        unlock = locked & jnp.any(onehot & ~lock[:, None] & same, axis=0)
        new_lock = jnp.any(pressing, axis=0) & ~locked
        locker = jnp.argmax(pressing, axis=0)
        lock_team = jnp.where(unlock, -1, g.lock_team)
        locker_arr = jnp.where(unlock, -1, g.locker)
        lock_team = jnp.where(new_lock, team[locker], lock_team)
        locker_arr = jnp.where(new_lock, locker, locker_arr)
        pose = jnp.concatenate([po, yo[:, None]], -1)
        lock_pose = jnp.where(new_lock[:, None], pose, g.holds.lock_pose)
        locked = lock_team >= 0
        held = g.holds.held
        locked_x = jnp.concatenate([locked, jnp.zeros((1,), bool)])
        release = (held >= 0) & (~grab | locked_x[held])
        held = jnp.where(release, -1, held)
        new = grab & (held < 0) & (target >= 0) & ~locked_x[target]
        # the target's pose in the agent's frame
        tp = po[jnp.maximum(target, 0)]
        rel_xy = unrotate(tp - b.p[:A], jnp.cos(b.yaw[:A]), jnp.sin(b.yaw[:A]))
        rel = jnp.concatenate([rel_xy, (yo[jnp.maximum(target, 0)] - b.yaw[:A])[:, None]], -1)
        holds = P.Holds(held=jnp.where(new, target, held), rel=jnp.where(new[:, None], rel, g.holds.rel),
                        locked=locked, lock_pose=lock_pose)
        return g.replace(holds=holds, lock_team=lock_team, locker=locker_arr)

    # ----------------------------------------------------------------------------- observations

    def _observe(self, g: Game):
        A, B = self.num_agents, self.num_boxes
        lidar, vis = observe_rays(g.world, g.bodies, A)
        g = g.replace(seen_obj=vis[:, A:])
        b, w = g.bodies, g.world
        c, s = jnp.cos(b.yaw), jnp.sin(b.yaw)
        prep = jnp.minimum(1.0, g.t / self.prep_steps) if self.prep_steps > 0 else jnp.float32(1.0)
        z = jnp.concatenate([b.base + AGENT_R, jnp.full((self.spec.n_objects,), OBJ_Z)])
        vz = jnp.concatenate([b.vz, jnp.zeros((self.spec.n_objects,))])
        exists = jnp.concatenate([w.agent_on, w.obj_on])
        base = jnp.concatenate([b.p, z[:, None], c[:, None], s[:, None], b.v, vz[:, None], b.w[:, None]], -1)
        base = base * exists[:, None]                                              # [N, 9]
        on = w.agent_on
        agents = jnp.concatenate([base[:A], g.hider[:, None].astype(jnp.float32), jnp.full((A, 1), prep)], -1)
        agents = agents * on[:, None]
        others = self._others
        team = jnp.where(on, g.hider.astype(jnp.int32), -1)
        size = jnp.concatenate([2 * w.half, jnp.full((self.spec.n_objects, 1), 2 * OBJ_Z)], -1)
        locked = (g.lock_team >= 0).astype(jnp.float32)
        mine = (g.lock_team[None] == team[:, None]) & (g.lock_team[None] >= 0)
        by_me = g.locker[None] == jnp.arange(A)[:, None]
        objf = jnp.concatenate([jnp.broadcast_to(base[None, A:], (A,) + base[A:].shape),
                                jnp.broadcast_to(size[None], (A,) + size.shape),
                                jnp.broadcast_to(locked[None, :, None], (A, self.spec.n_objects, 1)),
                                mine[..., None].astype(jnp.float32), by_me[..., None].astype(jnp.float32)], -1)
        objf = objf * w.obj_on[None, :, None]
        vis_f = vis.astype(jnp.float32)
        obj_ex = (w.obj_on[None] & on[:, None]).astype(jnp.float32)
        ar = jnp.arange(A)[:, None]
        obs = {
            "self": agents,
            "agents": agents[others],
            "agents_visible": vis_f[ar, others],
            "agents_exists": (on[others] & on[:, None]).astype(jnp.float32),
            "boxes": objf[:, :B], "boxes_visible": vis_f[:, A:A + B], "boxes_exists": obj_ex[:, :B],
            "ramps": objf[:, B:], "ramps_visible": vis_f[:, A + B:], "ramps_exists": obj_ex[:, B:],
            "lidar": lidar * on[:, None],
            "agent_exists": on.astype(jnp.float32),
        }
        assert obs["self"].shape[-1] == AGENT_FEATS and objf.shape[-1] == OBJECT_FEATS
        return obs, g, vis

    # ----------------------------------------------------------------------------- statistics

    def _moves(self, g: Game):
        A, B = self.num_agents, self.num_boxes
        d = jnp.sqrt(jnp.sum((g.bodies.p[A:] - g.start) ** 2, -1))
        d = jnp.where(g.world.obj_on, d, 0.0)
        locked = (g.lock_team >= 0) & g.world.obj_on
        return jnp.stack([jnp.max(d[:B], initial=0.0), jnp.max(d[B:], initial=0.0),
                          jnp.sum(locked[:B]).astype(jnp.float32), jnp.sum(locked[B:]).astype(jnp.float32)])

    def _metrics(self, g: Game, ended):
        on = g.world.agent_on
        out = {}
        if self.random_opponents or self.spec.name != "quadrant":
            learn = on & (g.hider.astype(jnp.int32) != g.opponent)
            out["learn"] = learn.astype(jnp.float32)
        h, s = on & g.hider, on & ~g.hider
        mean = lambda m: jnp.sum(g.ret * m) / jnp.maximum(jnp.sum(m), 1)     # noqa: E731
        vals = jnp.concatenate([g.prep_stats, self._moves(g),
                                jnp.stack([jnp.where(g.rewarded > 0, g.seen_steps / jnp.maximum(g.rewarded, 1), 0.0),
                                           mean(h), mean(s)])])
        for k, x in zip(STAT_KEYS, vals):
            out["episode_stat_" + k] = jnp.where(ended, x, 0.0)
        return out
