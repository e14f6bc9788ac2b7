"""Lidar and line of sight in JAX: 3-D rays against the game's solids, as MuJoCo's `mj_multiRay` casts
them in the MuJoCo game (hide_and_seek/observations.py).

Solids (one env): walls (axis-aligned boxes standing on the floor), objects (yawed boxes; a ramp is
its box cut by the 45-degree plane `z + y_local <= half_y`, high side at local -y) and agents (spheres
of radius 0.15 around (x, y, base + 0.15)). A ray is o + t d for t in [0, 1]; its entry into each
solid comes from slab clipping (boxes, ramps) or the sphere's quadratic.

- Lidar: 30 horizontal rays at fixed world angles from each agent's centre, 6 m long; the distance to
  the first solid other than the agent itself, 6 where none.
- Sight: agent i sees slot j when j lies in i's 135-degree cone (horizontal plane, as OpenAI's
  `in_cone2d`) and the segment from i's centre to j's centre (a ramp: its wedge's centroid) enters j
  before any other solid (i itself excluded).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from srljax.envs.hns_jax.geometry import unrotate
from srljax.envs.hns_jax.physics import AGENT_R, OBJ_TOP

N_LIDAR = 30
LIDAR_RANGE = 6.0
COS_HALF_CONE = float(np.cos(np.deg2rad(135.0 / 2)))
_ANG = 2 * np.pi * np.arange(N_LIDAR) / N_LIDAR
LIDAR_DIRS = np.stack([np.cos(_ANG), np.sin(_ANG)], axis=1).astype(np.float32)
FAR = 1e9


def _slab(o, d, lo, hi):
    """Entry and exit t of the line o + t d through the slab lo <= x <= hi (arrays broadcast)."""
    small = jnp.abs(d) < 1e-9
    inv = 1.0 / jnp.where(small, 1e-9, d)
    t1, t2 = (lo - o) * inv, (hi - o) * inv
    inside = (o >= lo) & (o <= hi)
    t_in = jnp.where(small, jnp.where(inside, -FAR, FAR), jnp.minimum(t1, t2))
    t_out = jnp.where(small, jnp.where(inside, FAR, -FAR), jnp.maximum(t1, t2))
    return t_in, t_out


def prism_entry(o, d, centre, half, top, cos, sin, ramp):
    """Entry t (FAR: missed) of rays o + t d, t in [0, 1], into upright yawed boxes.

    o, d [..., 3]; centre [..., 2], half [..., 2], top [...], cos/sin [...], ramp [...] bool (then the
    box is cut by the plane z + y_local <= half_y). All broadcast together."""
    lo = unrotate(o[..., :2] - centre, cos, sin)
    ld = unrotate(d[..., :2], cos, sin)
    tx0, tx1 = _slab(lo[..., 0], ld[..., 0], -half[..., 0], half[..., 0])
    ty0, ty1 = _slab(lo[..., 1], ld[..., 1], -half[..., 1], half[..., 1])
    tz0, tz1 = _slab(o[..., 2], d[..., 2], 0.0, top)
    t_in = jnp.maximum(jnp.maximum(tx0, ty0), jnp.maximum(tz0, 0.0))
    t_out = jnp.minimum(jnp.minimum(tx1, ty1), jnp.minimum(tz1, 1.0))
    # the ramp's slope: y_local + z <= half_y
    ao = lo[..., 1] + o[..., 2]
    ad = ld[..., 1] + d[..., 2]
    c = half[..., 1]
    small = jnp.abs(ad) < 1e-9
    tp = (c - ao) / jnp.where(small, 1e-9, ad)
    s_in = jnp.where(small, jnp.where(ao <= c, -FAR, FAR), jnp.where(ad < 0, tp, -FAR))
    s_out = jnp.where(small, jnp.where(ao <= c, FAR, -FAR), jnp.where(ad > 0, tp, FAR))
    t_in = jnp.where(ramp, jnp.maximum(t_in, s_in), t_in)
    t_out = jnp.where(ramp, jnp.minimum(t_out, s_out), t_out)
    return jnp.where(t_in <= t_out, t_in, FAR)


def sphere_entry(o, d, centre, r=AGENT_R):
    """Entry t (FAR: missed) of rays o + t d, t in [0, 1], into spheres (broadcast)."""
    oc = o - centre
    a = jnp.sum(d * d, -1)
    b = jnp.sum(d * oc, -1)
    c = jnp.sum(oc * oc, -1) - r * r
    disc = b * b - a * c
    sq = jnp.sqrt(jnp.maximum(disc, 0.0))
    t0 = (-b - sq) / jnp.maximum(a, 1e-12)
    t1 = (-b + sq) / jnp.maximum(a, 1e-12)
    hit = (disc >= 0) & (t1 >= 0) & (t0 <= 1.0)
    return jnp.where(hit, jnp.maximum(t0, 0.0), FAR)


def entries(o, d, solids):
    """Entry t of rays [R] (3-D) into every solid of one env: ([R, W], [R, A], [R, O])."""
    wc, wh, wtop, won, pc, ph, pcos, psin, pramp, pon, ac, aon = solids
    t_w = prism_entry(o[:, None], d[:, None], wc[None], wh[None], wtop[None], 1.0, 0.0, False)
    t_w = jnp.where(won[None], t_w, FAR)
    t_o = prism_entry(o[:, None], d[:, None], pc[None], ph[None], OBJ_TOP, pcos[None], psin[None], pramp[None])
    t_o = jnp.where(pon[None], t_o, FAR)
    t_a = sphere_entry(o[:, None], d[:, None], ac[None])
    t_a = jnp.where(aon[None], t_a, FAR)
    return t_w, t_a, t_o


def _box_entry_2d(ox, oy, dx, dy, xlo, xhi, ylo, yhi):
    """Entry t in [0, 1] (FAR: missed) of 2-D rays into axis-aligned boxes, in the box's frame."""
    tx0, tx1 = _slab(ox, dx, xlo, xhi)
    ty0, ty1 = _slab(oy, dy, ylo, yhi)
    t_in = jnp.maximum(jnp.maximum(tx0, ty0), 0.0)
    t_out = jnp.minimum(jnp.minimum(tx1, ty1), 1.0)
    return jnp.where(t_in <= t_out, t_in, FAR)


def lidar(world, p, cos, sin, zc, A: int):
    """[A, 30] lidar distances. The rays are horizontal, at the height zc [A] of each agent's centre,
    so each solid is cut at that height: a wall or box is its footprint while zc is below its top,
    a ramp the part of its footprint where the slope stands above zc, an agent the circle where its
    sphere meets the plane."""
    d = jnp.asarray(LIDAR_DIRS) * LIDAR_RANGE                                     # [30, 2]
    o = p[:A]
    # walls: axis-aligned
    rel = o[:, None, :] - world.wall_c[None]                                       # [A, W, 2]
    h = world.wall_h[None]
    t_w = _box_entry_2d(rel[:, None, :, 0], rel[:, None, :, 1], d[None, :, None, 0], d[None, :, None, 1],
                        -h[:, None, :, 0], h[:, None, :, 0], -h[:, None, :, 1], h[:, None, :, 1])   # [A, 30, W]
    t_w = jnp.where((world.wall_on[None] & (zc[:, None] <= world.wall_top[None]))[:, None], t_w, FAR)
    # objects: in each object's frame
    po, co, so = p[A:], cos[A:], sin[A:]
    lo = unrotate(o[:, None, :] - po[None], co[None], so[None])                    # [A, O, 2]
    ld = unrotate(d[:, None, :], co[None], so[None])                               # [30, O, 2]
    hx, hy = world.half[None, :, 0], world.half[None, :, 1]
    yhi = jnp.where(world.ramp[None], jnp.minimum(hy, hy - zc[:, None]), hy)      # [A, O]
    t_o = _box_entry_2d(lo[:, None, :, 0], lo[:, None, :, 1], ld[None, :, :, 0], ld[None, :, :, 1],
                        -hx[:, None], hx[:, None], -hy[:, None], yhi[:, None])     # [A, 30, O]
    hit_o = world.obj_on[None] & (zc[:, None] <= OBJ_TOP) & (yhi >= -hy)
    t_o = jnp.where(hit_o[:, None], t_o, FAR)
    # agents: circles at the ray's height
    dz = zc[:, None] - zc[None]                                                    # [A, A]
    r2 = AGENT_R ** 2 - dz * dz
    oc = o[:, None] - o[None]                                                      # [A, A, 2]
    b = jnp.sum(d[None, :, None] * oc[:, None], -1)                                # [A, 30, A]
    a = LIDAR_RANGE ** 2
    c = jnp.sum(oc * oc, -1)[:, None] - r2[:, None]
    disc = b * b - a * c
    t0 = (-b - jnp.sqrt(jnp.maximum(disc, 0.0))) / a
    t1 = (-b + jnp.sqrt(jnp.maximum(disc, 0.0))) / a
    ok = (disc >= 0) & (t1 >= 0) & (t0 <= 1.0) & (r2 > 0)[:, None]
    ok = ok & (world.agent_on[None] & ~jnp.eye(A, dtype=bool))[:, None]
    t_a = jnp.where(ok, jnp.maximum(t0, 0.0), FAR)
    first = jnp.minimum(jnp.min(t_w, -1, initial=FAR),
                        jnp.minimum(jnp.min(t_o, -1, initial=FAR), jnp.min(t_a, -1, initial=FAR)))
    return jnp.minimum(first, 1.0) * LIDAR_RANGE


def ramp_centroid(half):
    """The wedge's centroid relative to its box centre: (0, -half_y / 3, -half_z / 3)."""
    return -half[..., 1] / 3.0


def observe_rays(world, bodies, A: int):
    """Lidar [A, 30] (metres, 6 where nothing is hit) and visibility [A, N] (N = agents, boxes,
    ramps) of one env."""
    p, yaw, base = bodies.p, bodies.yaw, bodies.base
    c, s = jnp.cos(yaw), jnp.sin(yaw)
    centre_a = jnp.concatenate([p[:A], (base + AGENT_R)[:, None]], -1)             # [A, 3]
    solids = (world.wall_c, world.wall_h, world.wall_top, world.wall_on, p[A:], world.half, c[A:], s[A:],
              world.ramp, world.obj_on, centre_a, world.agent_on)
    # targets: agent centres, box centres, ramp centroids
    off = jnp.where(world.ramp, ramp_centroid(world.half), 0.0)                     # along local y
    obj_xy = p[A:] + jnp.stack([-s[A:] * off, c[A:] * off], -1)
    obj_z = jnp.where(world.ramp, OBJ_TOP / 2 + off, OBJ_TOP / 2)
    targets = jnp.concatenate([centre_a, jnp.concatenate([obj_xy, obj_z[:, None]], -1)], 0)   # [N, 3]
    N = targets.shape[0]
    dist = lidar(world, p, c, s, base + AGENT_R, A)
    o = jnp.repeat(centre_a, N, 0)
    d = (targets[None] - centre_a[:, None]).reshape(A * N, 3)
    t_w, t_a, t_o = entries(o, d, solids)                                           # [A N, W], [A N, A], ...
    owner = jnp.repeat(jnp.arange(A), N)
    t_a = jnp.where(owner[:, None] == jnp.arange(A)[None], FAR, t_a)               # rays ignore their agent
    # sight: the target slot's own entry must come first
    t_body = jnp.concatenate([t_a, t_o], -1).reshape(A, N, N)                     # [i, target j, solid k]
    own = jnp.diagonal(t_body, axis1=1, axis2=2)                                    # [A, N]
    others = jnp.where(jnp.eye(N, dtype=bool)[None], FAR, t_body)
    t_wall = jnp.min(t_w, -1, initial=FAR).reshape(A, N)
    clear = (own < FAR) & (own <= jnp.min(others, -1)) & (own <= t_wall)
    dx = targets[None, :, 0] - centre_a[:, None, 0]
    dy = targets[None, :, 1] - centre_a[:, None, 1]
    along = dx * c[:A, None] + dy * s[:A, None]
    cone = along >= COS_HALF_CONE * jnp.sqrt(dx * dx + dy * dy)
    exists = jnp.concatenate([world.agent_on, world.obj_on])
    not_self = ~jnp.eye(A, N, dtype=bool)
    vis = cone & clear & exists[None] & not_self & world.agent_on[:, None]
    return dist, vis
