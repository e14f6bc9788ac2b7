"""2-D geometry for the JAX hide-and-seek physics: rotations and rectangle contacts, written with
`where`s rather than gathers (under `vmap` on a CPU a gather costs far more than a select)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def rotate(x: jax.Array, c: jax.Array, s: jax.Array) -> jax.Array:
    """Rotate [..., 2] by the angle whose cos and sin are c, s (broadcast over [...])."""
    return jnp.stack([c * x[..., 0] - s * x[..., 1], s * x[..., 0] + c * x[..., 1]], axis=-1)


def unrotate(x: jax.Array, c: jax.Array, s: jax.Array) -> jax.Array:
    return jnp.stack([c * x[..., 0] + s * x[..., 1], -s * x[..., 0] + c * x[..., 1]], axis=-1)


def cross(r: jax.Array, n: jax.Array) -> jax.Array:
    return r[..., 0] * n[..., 1] - r[..., 1] * n[..., 0]


def disc_rect(centre, rc, rh, c=None, s=None):
    """Disc centres [..., 2] against rectangles (centre rc, half rh; yawed by cos/sin c, s, or
    axis-aligned when c is None), broadcast. Returns (signed distance from the rectangle, > 0
    outside; unit normal from the rectangle towards the centre; the rectangle's closest point).
    Selections are `where`s, not gathers: under `vmap` on a CPU a gather costs far more."""
    rel = centre - rc
    local = rel if c is None else unrotate(rel, c, s)
    lx, ly = local[..., 0], local[..., 1]
    hx, hy = rh[..., 0], rh[..., 1]
    qx, qy = jnp.clip(lx, -hx, hx), jnp.clip(ly, -hy, hy)
    dx, dy = lx - qx, ly - qy
    dist = jnp.sqrt(dx * dx + dy * dy + 1e-12)
    gx, gy = hx - jnp.abs(lx), hy - jnp.abs(ly)
    outside = (gx < 0) | (gy < 0)
    use_x = gx <= gy                      # inside: leave by the nearest face
    nx = jnp.where(outside, dx / dist, jnp.where(use_x, jnp.sign(lx) + (lx == 0), 0.0))
    ny = jnp.where(outside, dy / dist, jnp.where(use_x, 0.0, jnp.sign(ly) + (ly == 0)))
    signed = jnp.where(outside, dist, -jnp.minimum(gx, gy))
    n = jnp.stack([nx, ny], -1)
    q = jnp.stack([qx, qy], -1)
    if c is None:
        return signed, n, rc + q
    return signed, rotate(n, c, s), rc + rotate(q, c, s)


def rect_rect(ca, ha, cosa, sina, cb, hb, cosb, sinb):
    """Separating-axis test of yawed rectangles A against B (broadcast over leading axes).

    Returns (depth: the least overlap over the four axes, 0 when they are apart; n: unit normal
    that moves A out of B; point: a contact point for the torque, A's deepest point in direction
    -n (its face centre when a face meets B) clamped into B). A pair's centres must not pass each
    other within a substep for n to point the right way: at most the smaller half width."""
    cosa, sina, cosb, sinb = jnp.broadcast_arrays(cosa, sina, cosb, sinb)
    shape = cosa.shape + (2,)
    ca, ha, cb, hb = (jnp.broadcast_to(x, shape) for x in (ca, ha, cb, hb))
    axes = jnp.stack([jnp.stack([cosa, sina], -1), jnp.stack([-sina, cosa], -1),
                      jnp.stack([cosb, sinb], -1), jnp.stack([-sinb, cosb], -1)], axis=-2)  # [..., 4, 2]
    ua0, ua1 = axes[..., 0, :], axes[..., 1, :]
    ub0, ub1 = axes[..., 2, :], axes[..., 3, :]
    dot = lambda x, y: jnp.sum(x * y, -1)   # noqa: E731
    ra = ha[..., None, 0] * jnp.abs(dot(ua0[..., None, :], axes)) + ha[..., None, 1] * jnp.abs(dot(ua1[..., None, :], axes))
    rb = hb[..., None, 0] * jnp.abs(dot(ub0[..., None, :], axes)) + hb[..., None, 1] * jnp.abs(dot(ub1[..., None, :], axes))
    d = dot((ca - cb)[..., None, :], axes)
    overlap = ra + rb - jnp.abs(d)                                   # [..., 4]
    depth, u, dk = overlap[..., 0], axes[..., 0, :], d[..., 0]
    for k in range(1, 4):                 # the least overlap, by selects (no gather)
        better = overlap[..., k] < depth
        depth = jnp.where(better, overlap[..., k], depth)
        u = jnp.where(better[..., None], axes[..., k, :], u)
        dk = jnp.where(better, d[..., k], dk)
    depth = jnp.maximum(depth, 0.0)
    n = u * jnp.where(dk >= 0, 1.0, -1.0)[..., None]
    sx = -jnp.clip(dot(ua0, n) * 20.0, -1.0, 1.0)
    sy = -jnp.clip(dot(ua1, n) * 20.0, -1.0, 1.0)
    pt = ca + (ha[..., 0] * sx)[..., None] * ua0 + (ha[..., 1] * sy)[..., None] * ua1
    local = jnp.clip(unrotate(pt - cb, cosb, sinb), -hb, hb)
    return depth, n, cb + rotate(local, cosb, sinb)


def rect_aabb(ca, ha, cosa, sina, cb, hb, ref=None):
    """`rect_rect` with B axis-aligned (a wall), in fewer operations: (depth, n moving A out of B,
    contact point). ca, ha [..., 2], cosa, sina [...]; cb, hb [..., 2]; all broadcast. `ref`: A's
    centre a moment earlier; the side of B it was on decides the normals' signs (no tunnelling)."""
    dx, dy = ca[..., 0] - cb[..., 0], ca[..., 1] - cb[..., 1]
    rx, ry = (dx, dy) if ref is None else (ref[..., 0] - cb[..., 0], ref[..., 1] - cb[..., 1])
    ac, as_ = jnp.abs(cosa), jnp.abs(sina)
    hx, hy, wx, wy = ha[..., 0], ha[..., 1], hb[..., 0], hb[..., 1]
    d0, d1 = dx * cosa + dy * sina, -dx * sina + dy * cosa
    r0, r1 = rx * cosa + ry * sina, -rx * sina + ry * cosa
    sg = lambda x: jnp.sign(x) + (x == 0)                                      # noqa: E731
    sx, sy, s0, s1 = sg(rx), sg(ry), sg(r0), sg(r1)
    overlaps = (hx * ac + hy * as_ + wx - dx * sx,              # world x
                hx * as_ + hy * ac + wy - dy * sy,              # world y
                hx + wx * ac + wy * as_ - d0 * s0,              # A's first axis
                hy + wx * as_ + wy * ac - d1 * s1)              # A's second axis
    zero = jnp.zeros_like(dx)
    normals = ((sx, zero), (zero, sy), (cosa * s0, sina * s0), (-sina * s1, cosa * s1))
    depth, (nx, ny) = overlaps[0], normals[0]
    for k in range(1, 4):
        better = overlaps[k] < depth
        depth = jnp.where(better, overlaps[k], depth)
        nx, ny = jnp.where(better, normals[k][0], nx), jnp.where(better, normals[k][1], ny)
    sx = -jnp.clip((nx * cosa + ny * sina) * 20.0, -1.0, 1.0)
    sy = -jnp.clip((-nx * sina + ny * cosa) * 20.0, -1.0, 1.0)
    px = ca[..., 0] + hx * sx * cosa - hy * sy * sina
    py = ca[..., 1] + hx * sx * sina + hy * sy * cosa
    px = jnp.clip(px, cb[..., 0] - wx, cb[..., 0] + wx)
    py = jnp.clip(py, cb[..., 1] - wy, cb[..., 1] + wy)
    return jnp.maximum(depth, 0.0), jnp.stack([nx, ny], -1), jnp.stack([px, py], -1)
