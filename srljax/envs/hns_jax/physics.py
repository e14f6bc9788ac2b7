"""Planar rigid-body physics for hide-and-seek in JAX, with the game's heights as explicit state.

Why not MuJoCo in JAX: on this project's 2-core machine (docs/hns_jax.md, "Physics") MJX stepped the
quadrant scene 7.6-15 env steps per CPU-second (every one of 158 contact slots evaluated every
substep) and jax2d 136-280, against MuJoCo C's 1.6k; a purpose-built model is the route.

The model. Every body moves in the plane: position p [N, 2], yaw, velocity v [N, 2] and yaw rate w.
Bodies are the agents (discs of radius 0.15), then the objects (boxes and ramps: yawed rectangles).
Walls are static axis-aligned rectangles. Height is explicit: each agent has a `base` (the height of
its bottom above the floor) and a vertical speed; boxes, ramps and walls have tops (0.5 m; outer walls
4 m), a ramp's top rises at 45 degrees towards its local -y side. An agent collides with an object or
wall only where that top stands more than STEP above its base, so an agent on a box or a ramp's top
(base 0.5) walks over boxes and interior walls, an agent on the floor walks up a ramp's low edge, and
an agent whose support goes away falls with gravity 50.

Each substep (SUBSTEPS of DT; 5 x 0.015 s = one 0.075 s env step, as MuJoCo's 15 x 0.005 s):
1. forces: motor force 100 x control on agents, implicit damping 10 (exact for the linear part),
   Coulomb floor friction (0.2 x 50 = 10 N on a unit mass) on everything, a friction torque on objects;
   a yaw rate of 10 x control on agents (their inertia is tiny: MuJoCo reaches it within a substep);
   an agent on a ramp's slope is pushed down-slope and the ramp up-slope (50 N: m g tan 45, what
   lifts a unit mass up a frictionless 45-degree slope);
2. positions integrate; then position-based contact projection (Jacobi): disc-disc, disc-rectangle,
   rectangle-rectangle (penetrating corners), against walls; objects turn by the contact torque;
3. grabs pull held objects to their frozen relative pose (agent and object share the correction),
   locked objects return to their locked pose; velocities are the position change over DT.
At 8 m/s (the agents' top speed: (90 - 10) N / 10) a body moves 0.12 m a substep, less than the
0.125 m a thin box and a wall overlap before their centres would pass: nothing tunnels.

Calibrated against MuJoCo (scripts in tests/envs/test_hns_jax_physics.py): an agent's top speed
8 m/s at full force (2.6 at bin 7, 0.8 at bin 6), a 0.1 s time constant, 9 rad/s turns; a sliding
box decelerates at 10 m/s^2; a pushed cube moves at 6-7 m/s, faster with two agents.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from srljax.envs.hns_jax.geometry import cross, disc_rect, rect_aabb, rect_rect, rotate, unrotate

DT_STEP = 0.075
SUBSTEPS = 5
DT = DT_STEP / SUBSTEPS
GRAVITY = 50.0
GEAR = 100.0
AGENT_DAMPING = 10.0
MU_FLOOR = 0.2
MU_BOX = 0.2
MU_RAMP = 0.01
AGENT_R = 0.15
OBJ_TOP = 0.5
STEP = 0.1                  # an agent steps onto a surface at most this far above its base
RAMP_LIFT = AGENT_R * (2 ** 0.5 - 1)   # a sphere on a 45-degree slope rests this far above it
SLOPE_PUSH = GRAVITY        # m g tan 45: what holds a unit mass up a frictionless 45-degree slope
MAX_SPEED = 7.9
WALL_PASSES = 2
TURN_RATE = GEAR / 10.0     # yaw rate per unit control (torque 100 against damping 10)
BIG = 1e6


@struct.dataclass
class World:
    """What stays fixed during an episode (one env; a batch adds a leading axis).

    wall_c, wall_h [W, 2] centre and half extents; wall_top [W] height; wall_on [W].
    half [O, 2] each object's footprint half extents; ramp [O] True for ramps; inv_i [O] 1/inertia.
    agent_on [A], obj_on [O]: slots in play."""

    wall_c: jax.Array
    wall_h: jax.Array
    wall_top: jax.Array
    wall_on: jax.Array
    half: jax.Array
    ramp: jax.Array
    inv_i: jax.Array
    agent_on: jax.Array
    obj_on: jax.Array


@struct.dataclass
class Bodies:
    """Moving state: p [N, 2], yaw [N], v [N, 2], w [N] (agents first, then objects);
    base [A] and vz [A]: each agent's height above the floor (its bottom) and vertical speed."""

    p: jax.Array
    yaw: jax.Array
    v: jax.Array
    w: jax.Array
    base: jax.Array
    vz: jax.Array


@struct.dataclass
class Holds:
    """Grab and lock state: held [A] object index or -1, rel [A, 3] the held object's pose (x, y,
    yaw) in its holder's frame; locked [O], lock_pose [O, 3]."""

    held: jax.Array
    rel: jax.Array
    locked: jax.Array
    lock_pose: jax.Array


def box_inertia_inv(half: jax.Array) -> jax.Array:
    """1 / (unit-mass rectangle's inertia about z) for footprint half extents [..., 2]."""
    return 3.0 / jnp.maximum(half[..., 0] ** 2 + half[..., 1] ** 2, 1e-6)


def ramp_support(local: jax.Array, half: jax.Array) -> jax.Array:
    """Base height of a disc whose centre is at `local` (ramp frame) resting on the ramp's slope:
    0 beyond the low edge (+y), 0.5 at the high edge (-y), clipped to [0, 0.5]."""
    return jnp.clip(half[..., 1] - local[..., 1] + RAMP_LIFT, 0.0, OBJ_TOP)


def support(world: World, bodies: Bodies, A: int) -> jax.Array:
    """[A] the height each agent would stand at: the floor, or the top of a box or ramp under its
    centre (objects only; nothing stands on a wall)."""
    po, c, s = bodies.p[A:], jnp.cos(bodies.yaw[A:]), jnp.sin(bodies.yaw[A:])
    local = unrotate(bodies.p[:A, None, :] - po[None], c[None], s[None])       # [A, O, 2]
    inside = jnp.all(jnp.abs(local) <= world.half[None], axis=-1) & world.obj_on[None]
    top = jnp.where(world.ramp[None], ramp_support(local, world.half[None]), OBJ_TOP)
    return jnp.max(jnp.where(inside, top, 0.0), axis=-1, initial=0.0)


def _obj_top_at(world: World, q_local: jax.Array) -> jax.Array:
    """Top height of each object at the points q_local [A, O, 2] of its own frame."""
    return jnp.where(world.ramp[None], ramp_support(q_local, world.half[None]) - RAMP_LIFT, OBJ_TOP)


def contacts(world: World, b: Bodies, inv_m: jax.Array, A: int):
    """Position corrections (dp [N, 2], dyaw [N]) that separate overlapping bodies (one Jacobi pass).

    inv_m [N]: inverse masses (0 for a locked object, which also gets no rotation)."""
    N = b.p.shape[0]
    c, s = jnp.cos(b.yaw), jnp.sin(b.yaw)
    pa, po = b.p[:A], b.p[A:]
    co, so = c[A:], s[A:]
    inv_i = world.inv_i * (inv_m[A:] > 0)
    dp = jnp.zeros((N, 2))
    dyaw = jnp.zeros((N,))

    # agents against agents: discs, if their heights overlap
    d = pa[:, None] - pa[None]
    dist = jnp.sqrt(jnp.sum(d * d, -1) + 1e-12)
    both = world.agent_on[:, None] & world.agent_on[None] & ~jnp.eye(A, dtype=bool)
    level = jnp.abs(b.base[:, None] - b.base[None]) < 2 * AGENT_R
    pen = jnp.where(both & level, jnp.maximum(2 * AGENT_R - dist, 0.0), 0.0)
    dp = dp.at[:A].add(jnp.sum(0.5 * pen[..., None] * d / dist[..., None], axis=1))

    # agents against objects (ramps: by the slope's height at the closest point)
    signed, n, q = disc_rect(pa[:, None], po[None], world.half[None], co[None], so[None])
    q_local = unrotate(q - po[None], co[None], so[None])
    blocks = (_obj_top_at(world, q_local) > b.base[:, None] + STEP) & world.obj_on[None] & world.agent_on[:, None]
    pen = jnp.where(blocks, jnp.maximum(AGENT_R - signed, 0.0), 0.0)          # [A, O]
    r = q - po[None]
    rn = cross(r, n)
    w_o = inv_m[A:][None] + rn * rn * inv_i[None]
    lam = pen / (1.0 + w_o)
    # contact friction (boxes 0.2, ramps 0.01: MuJoCo takes the larger of the two geoms'):
    # the tangential slip of this substep, undone up to mu times the normal correction
    t = jnp.stack([-n[..., 1], n[..., 0]], -1)
    wo = b.w[A:][None]
    v_pt = b.v[A:][None] + jnp.stack([-wo * r[..., 1], wo * r[..., 0]], -1)
    slip = jnp.sum((b.v[:A, None] - v_pt) * t, -1) * DT                        # [A, O]
    rt = cross(r, t)
    w_t = inv_m[A:][None] + rt * rt * inv_i[None]
    mu = jnp.where(world.ramp, MU_RAMP, MU_BOX)[None]
    fr = -jnp.sign(slip) * jnp.minimum(jnp.abs(slip), mu * pen) * (pen > 0)
    fr = fr / (1.0 + w_t)
    dp = dp.at[:A].add(jnp.sum(lam[..., None] * n + fr[..., None] * t, axis=1))
    dp = dp.at[A:].add(-jnp.sum(lam[..., None] * n + fr[..., None] * t, axis=0) * inv_m[A:, None])
    dyaw = dyaw.at[A:].add(-jnp.sum(lam * rn + fr * rt, axis=0) * inv_i)

    # objects against objects (separating axes), each pair once: gathered and scattered by one-hot
    # matrices of the pairs i < j (matmuls: cheaper than gathers and half of all ordered pairs)
    O = po.shape[0]
    if O > 1:
        i_idx, j_idx = np.triu_indices(O, 1)
        Mi = jnp.asarray(np.eye(O, dtype=np.float32)[i_idx])                      # [P, O]
        Mj = jnp.asarray(np.eye(O, dtype=np.float32)[j_idx])
        pick = lambda M, x: M @ x                                                 # noqa: E731
        pi_, pj_ = pick(Mi, po), pick(Mj, po)
        hi_, hj_ = pick(Mi, world.half), pick(Mj, world.half)
        ci, si, cj, sj = Mi @ co, Mi @ so, Mj @ co, Mj @ so
        depth, n, point = rect_rect(pi_, hi_, ci, si, pj_, hj_, cj, sj)            # [P]
        on = world.obj_on.astype(jnp.float32)
        depth = depth * (Mi @ on) * (Mj @ on)
        ri, rj = point - pi_, point - pj_
        ni, nj = cross(ri, n), cross(rj, n)
        inv_mo = inv_m[A:]
        wi = Mi @ inv_mo + ni * ni * (Mi @ inv_i)
        wj = Mj @ inv_mo + nj * nj * (Mj @ inv_i)
        lam = depth / jnp.maximum(wi + wj, 1e-6)
        push = lam[:, None] * n
        dp = dp.at[A:].add((Mi.T @ push - Mj.T @ push) * inv_mo[:, None])
        dyaw = dyaw.at[A:].add((Mi.T @ (lam * ni) - Mj.T @ (lam * nj)) * inv_i)

    return dp, dyaw


def wall_contacts(world: World, b: Bodies, inv_m: jax.Array, A: int, p_ref=None):
    """Position corrections (dp [N, 2], dyaw [N]) that move bodies out of the walls. Applied after
    the bodies' own contacts, so that a body pressed into a wall by others ends on its surface
    (summed in one Jacobi pass, the two corrections over-resolved and the body bounced back).
    p_ref [N, 2] (the positions at the substep's start): an object leaves a wall on the side its
    centre was on then, so a thin box that passed a thin wall's centre line within a substep is
    put back, not through."""
    N = b.p.shape[0]
    c, s = jnp.cos(b.yaw), jnp.sin(b.yaw)
    pa, po = b.p[:A], b.p[A:]
    co, so = c[A:], s[A:]
    O = po.shape[0]
    inv_i = world.inv_i * (inv_m[A:] > 0)
    dp = jnp.zeros((N, 2))
    dyaw = jnp.zeros((N,))
    # agents against walls: the wall blocks where it stands above the agent's step
    signed, n, _ = disc_rect(pa[:, None], world.wall_c[None], world.wall_h[None])
    blocks = world.wall_on[None] & (world.wall_top[None] > b.base[:, None] + STEP) & world.agent_on[:, None]
    pen = jnp.where(blocks, jnp.maximum(AGENT_R - signed, 0.0), 0.0)
    dp = dp.at[:A].add(jnp.sum(pen[..., None] * n, axis=1))

    # objects against walls (static)
    if O:
        ref = None if p_ref is None else p_ref[A:, None]
        depth, n, point = rect_aabb(po[:, None], world.half[:, None], co[:, None], so[:, None],
                                    world.wall_c[None], world.wall_h[None], ref)        # [O, W]
        depth = jnp.where(world.wall_on[None] & world.obj_on[:, None], depth, 0.0)
        r = point - po[:, None]
        rn = cross(r, n)
        w = inv_m[A:, None] + rn * rn * inv_i[:, None]
        lam = jnp.where(w > 0, depth / jnp.maximum(w, 1e-6), 0.0)
        dp = dp.at[A:].add(jnp.sum(lam[..., None] * n, axis=1) * inv_m[A:, None])
        dyaw = dyaw.at[A:].add(jnp.sum(lam * rn, axis=1) * inv_i)
    return dp, dyaw


def _held_targets(b: Bodies, holds: Holds, A: int):
    """Each holder's target pose (x, y, yaw) [A, 3] for its held object."""
    c, s = jnp.cos(b.yaw[:A]), jnp.sin(b.yaw[:A])
    xy = b.p[:A] + rotate(holds.rel[:, :2], c, s)
    return jnp.concatenate([xy, (b.yaw[:A] + holds.rel[:, 2])[:, None]], axis=-1)


def _wrap(a):
    return jnp.mod(a + jnp.pi, 2 * jnp.pi) - jnp.pi


def grab_pull(b: Bodies, holds: Holds, A: int):
    """Corrections that bring every held object to its holders' frozen relative pose; holder and
    object share a position error equally (unit masses), the object takes the yaw."""
    O = b.p.shape[0] - A
    tgt = _held_targets(b, holds, A)
    holding = (holds.held >= 0)
    onehot = (holds.held[:, None] == jnp.arange(O)[None]) & holding[:, None]      # [A, O]
    onehot = onehot & ~holds.locked[None]
    err_xy = tgt[:, None, :2] - b.p[A:][None]                                     # [A, O, 2]
    err_yaw = _wrap(tgt[:, None, 2] - b.yaw[A:][None])
    k = jnp.maximum(jnp.sum(onehot, axis=0), 1)                                   # holders per object
    m = onehot.astype(b.p.dtype)
    share = 0.5 * m[..., None] * err_xy
    dp_obj = jnp.sum(share, axis=0) / k[:, None]
    dyaw_obj = jnp.sum(m * err_yaw, axis=0) / k
    dp_agent = -jnp.sum(share, axis=1)
    dp = jnp.concatenate([dp_agent, dp_obj], axis=0)
    dyaw = jnp.concatenate([jnp.zeros((A,)), dyaw_obj])
    return dp, dyaw


def substep(world: World, b: Bodies, holds: Holds, force: jax.Array, turn: jax.Array, A: int,
            iterations: int = 1) -> Bodies:
    """One substep of DT. force [A, 2] in newtons (world frame), turn [A] yaw-rate controls."""
    on = jnp.concatenate([world.agent_on, world.obj_on])
    locked = jnp.concatenate([jnp.zeros((A,), bool), holds.locked])
    inv_m = jnp.where(locked | ~on, 0.0, 1.0)

    # an agent on a ramp's slope is pushed down-slope, the ramp up-slope
    po, co, so = b.p[A:], jnp.cos(b.yaw[A:]), jnp.sin(b.yaw[A:])
    local = unrotate(b.p[:A, None] - po[None], co[None], so[None])
    inside = jnp.all(jnp.abs(local) <= world.half[None], axis=-1) & world.obj_on[None] & world.ramp[None]
    sup = ramp_support(local, world.half[None])
    on_slope = inside & (sup > 0) & (sup < OBJ_TOP) & (jnp.abs(b.base[:, None] - sup) < 0.05)
    down = rotate(jnp.array([0.0, 1.0]), co, so)                                  # [O, 2] towards the low edge
    push = on_slope[..., None] * SLOPE_PUSH * down[None]                          # [A, O, 2]
    f_agent = force + jnp.sum(push, axis=1)
    f_obj = -jnp.sum(push, axis=0)

    # velocities: forces, floor friction (Coulomb), implicit damping (agents)
    va = b.v[:A] + DT * f_agent
    vo = b.v[A:] + DT * f_obj
    v = jnp.concatenate([va, vo], axis=0)
    speed = jnp.sqrt(jnp.sum(v * v, -1) + 1e-12)
    # an agent on a slope rubs on the ramp (friction 0.01), not on the floor
    mu = jnp.concatenate([jnp.where(jnp.any(on_slope, -1), MU_RAMP, MU_FLOOR), jnp.full((v.shape[0] - A,), MU_FLOOR)])
    v = v * (jnp.maximum(speed - mu * GRAVITY * DT, 0.0) / speed)[:, None]
    v = v.at[:A].set(v[:A] / (1.0 + DT * AGENT_DAMPING))
    # objects' spin: a friction torque on a rectangle of footprint half (a, b): about
    # mu m g 0.55 sqrt(a^2 + b^2) (the mean distance of its area from its centre)
    arm = 0.55 * jnp.sqrt(jnp.sum(world.half ** 2, -1))
    alpha = MU_FLOOR * GRAVITY * arm * world.inv_i * DT
    wo = jnp.sign(b.w[A:]) * jnp.maximum(jnp.abs(b.w[A:]) - alpha, 0.0)
    # a spinning box's corners move no faster than MAX_SPEED either (an elongated box's end would
    # otherwise pass through a wall within a substep)
    reach = jnp.sqrt(jnp.sum(world.half ** 2, -1))
    wo = jnp.clip(wo, -MAX_SPEED / reach, MAX_SPEED / reach)
    w = jnp.concatenate([TURN_RATE * turn, wo])
    speed = jnp.sqrt(jnp.sum(v * v, -1) + 1e-12)
    v = v * (jnp.minimum(speed, MAX_SPEED) / speed)[:, None]
    v = v * (inv_m > 0)[:, None]
    w = jnp.where(inv_m > 0, w, 0.0)

    p0, yaw0 = b.p, b.yaw
    nb = b.replace(p=b.p + DT * v, yaw=b.yaw + DT * w, v=v, w=w)
    for _ in range(iterations):
        dp, dyaw = contacts(world, nb, inv_m, A)
        turn_cap = jnp.concatenate([jnp.full((A,), jnp.inf), MAX_SPEED * DT / reach])
        nb = nb.replace(p=nb.p + dp, yaw=nb.yaw + jnp.clip(dyaw, -turn_cap, turn_cap))
        gp, gy = grab_pull(nb, holds, A)      # a held box turns no faster than a free one may
        nb = nb.replace(p=nb.p + gp, yaw=nb.yaw + jnp.clip(gy, -turn_cap, turn_cap))
    # heights: fall towards the support, step up onto it (before the walls, which block by height)
    sup = support(world, nb, A)
    vz = nb.vz - GRAVITY * DT
    base = nb.base + DT * vz
    landed = base <= sup
    nb = nb.replace(base=jnp.where(landed, sup, base), vz=jnp.where(landed, 0.0, vz))
    for _ in range(WALL_PASSES):
        dp, dyaw = wall_contacts(world, nb, inv_m, A, p0)
        nb = nb.replace(p=nb.p + dp, yaw=nb.yaw + dyaw)
    # locked objects stay at their pose
    lp = jnp.concatenate([nb.p[:A], jnp.where(holds.locked[:, None], holds.lock_pose[:, :2], nb.p[A:])])
    ly = jnp.concatenate([nb.yaw[:A], jnp.where(holds.locked, holds.lock_pose[:, 2], nb.yaw[A:])])
    v = (lp - p0) / DT * (inv_m > 0)[:, None]
    w_new = jnp.where(inv_m > 0, (ly - yaw0) / DT, 0.0).at[:A].set(w[:A])
    return nb.replace(p=lp, yaw=ly, v=v, w=w_new)


def step(world: World, b: Bodies, holds: Holds, ctrl: jax.Array, A: int) -> Bodies:
    """One env step (SUBSTEPS substeps) under controls ctrl [A, 3] in [-0.9, 0.9] (x force, y force,
    turn); absent agents get none."""
    ctrl = ctrl * world.agent_on[:, None]
    force = GEAR * ctrl[:, :2]
    turn = ctrl[:, 2]

    def body(_, bb):
        return substep(world, bb, holds, force, turn, A)
    return jax.lax.fori_loop(0, SUBSTEPS, body, b)
