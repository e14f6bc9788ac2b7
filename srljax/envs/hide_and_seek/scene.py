"""The MuJoCo scene: one MJCF per variant with room for the most objects, filled from a Layout.

Every variant compiles one model holding its maximum number of agents, boxes, ramps and wall
segments. An env owns a copy of that model; `apply_layout` writes an episode's walls, box kinds and
poses into the copy and parks the unused objects (no contacts, invisible to rays, far away). So
resets never recompile, and every env of a batch shares one qpos layout.

Each movable body (agent, box, ramp) sits at the origin of the MJCF with four joints, slide x, y,
z and a hinge about z, in that order, so `qpos.reshape(n_bodies, 4)` is (x, y, z, yaw) per body.
"""
from __future__ import annotations

import dataclasses
from typing import List

import mujoco
import numpy as np

from srljax.envs.hide_and_seek.layout import CUBE_HALF, LONG_HALF, RAMP_HALF, AGENT_R, FLOOR, Layout

TIMESTEP = 0.005
SUBSTEPS = 15
GRAVITY = -50.0
GEAR = 100.0
# Constraint Jacobian layout. MuJoCo's default ("auto") is sparse from 60 dofs on: the full game
# (17 bodies x 4 = 68 dofs) got it, the quadrant game (28) did not. With mujoco 4.0.0 the sparse
# Newton solve went wrong when a grab or lock weld coupled a body to contacts whose pyramidal
# friction rows (friction 0.01: rows n +- 0.01 t, regularised 2 x 0.01^2 times less than the normal)
# are nearly parallel and nearly hard: it stalled at 100 iterations or "converged" to 1e7 N contact
# forces, agents were shot into walls and the accelerations blew up (the "unstable" episodes). The
# dense solve of the very same constraints is right (docs/hide_and_seek.md, "Physics stability").
JACOBIAN = "dense"
RAY_GROUP = 0          # geoms that block rays
HIDDEN_GROUP = 3       # parked objects and unused wall slots
PARK = np.array([60.0, 60.0, -5.0])


@dataclasses.dataclass(frozen=True)
class Variant:
    """The fixed numbers of one game variant (HIDE_AND_SEEK.md, table "Two variants")."""

    name: str
    max_agents: int
    max_boxes: int
    max_ramps: int
    wall_slots: int
    horizon: int
    prep_fraction: float = 0.4
    ramp_lockable: bool = False

    @property
    def prep_steps(self) -> int:
        return int(round(self.prep_fraction * self.horizon))

    @property
    def n_objects(self) -> int:
        return self.max_boxes + self.max_ramps

    @property
    def n_bodies(self) -> int:
        return self.max_agents + self.n_objects


VARIANTS = {
    "quadrant": Variant("quadrant", max_agents=4, max_boxes=2, max_ramps=1, wall_slots=8, horizon=80),
    "full": Variant("full", max_agents=6, max_boxes=9, max_ramps=2, wall_slots=10, horizon=240,
                    ramp_lockable=True),
}


def ramp_vertices() -> str:
    """A 45-degree wedge filling the 0.5 m cube around its body origin: high edge at local -y."""
    h = RAMP_HALF[0]
    pts = [(-h, -h, -h), (h, -h, -h), (-h, h, -h), (h, h, -h), (-h, -h, h), (h, -h, h)]
    return "  ".join(f"{x} {y} {z}" for x, y, z in pts)


def _joints(prefix: str, damping_xy: float, damping_yaw: float) -> str:
    return (f'<joint name="{prefix}x" type="slide" axis="1 0 0" damping="{damping_xy}"/>'
            f'<joint name="{prefix}y" type="slide" axis="0 1 0" damping="{damping_xy}"/>'
            f'<joint name="{prefix}z" type="slide" axis="0 0 1"/>'
            f'<joint name="{prefix}r" type="hinge" axis="0 0 1" damping="{damping_yaw}"/>')


def build_mjcf(v: Variant) -> str:
    """The MJCF text of a variant's largest scene (all slots present, unused ones parked later)."""
    walls = "".join(f'<geom name="wall{k}" type="box" size="0.05 0.05 0.05" pos="{-20 - k} -20 -5" '
                    f'friction="0.01" group="{HIDDEN_GROUP}"/>' for k in range(v.wall_slots))
    bodies = []
    for i in range(v.max_agents):
        bodies.append(f'<body name="agent{i}">{_joints(f"a{i}", 10, 10)}'
                      f'<geom name="agent{i}" type="sphere" size="{AGENT_R}" mass="1" friction="0.01"/></body>')
    for j in range(v.max_boxes):
        size = " ".join(map(str, CUBE_HALF))
        bodies.append(f'<body name="box{j}">{_joints(f"b{j}", 0.01, 0.01)}'
                      f'<geom name="box{j}" type="box" size="{size}" mass="1" friction="0.2"/></body>')
    for k in range(v.max_ramps):
        bodies.append(f'<body name="ramp{k}">{_joints(f"r{k}", 0.1, 0.1)}'
                      f'<geom name="ramp{k}" type="mesh" mesh="ramp" mass="1" friction="0.01"/></body>')
    objects = [f"box{j}" for j in range(v.max_boxes)] + [f"ramp{k}" for k in range(v.max_ramps)]
    welds = [f'<weld name="grab{i}_{o}" body1="agent{i}" body2="{o}" active="false"/>'
             for i in range(v.max_agents) for o in objects]
    welds += [f'<weld name="lock_{o}" body1="world" body2="{o}" active="false"/>' for o in objects]
    motors = "".join(f'<motor joint="a{i}x" gear="{GEAR}"/><motor joint="a{i}y" gear="{GEAR}"/>'
                     f'<motor joint="a{i}r" gear="{GEAR}"/>' for i in range(v.max_agents))
    return f"""<mujoco model="hns_{v.name}">
  <option timestep="{TIMESTEP}" gravity="0 0 {GRAVITY}" jacobian="{JACOBIAN}"/>
  <asset><mesh name="ramp" vertex="{ramp_vertices()}"/></asset>
  <worldbody>
    <geom name="floor" type="plane" size="{FLOOR / 2} {FLOOR / 2} 0.1" pos="{FLOOR / 2} {FLOOR / 2} 0"
          friction="0.2" group="1"/>
    {walls}
    {"".join(bodies)}
  </worldbody>
  <equality>{"".join(welds)}</equality>
  <actuator>{motors}</actuator>
</mujoco>"""


@dataclasses.dataclass
class SceneIds:
    """Index arrays into a compiled variant model, computed once."""

    wall_geoms: np.ndarray      # [W]
    body_geoms: np.ndarray      # [N] geom of each movable body (agents, boxes, ramps)
    bodies: np.ndarray          # [N] body ids
    geom_body_slot: np.ndarray  # [ngeom] slot (0..N-1) of the movable body owning a geom, else -1
    ramp_centre: np.ndarray     # [3] centroid of the wedge in its body frame (a ray target inside it)
    grab_eq0: int               # eq id of grab (agent 0, object 0); grab(i, o) = grab_eq0 + i * O + o
    lock_eq0: int               # eq id of lock(object 0); lock(o) = lock_eq0 + o


def scene_ids(m: mujoco.MjModel, v: Variant) -> SceneIds:
    names = ([f"agent{i}" for i in range(v.max_agents)] + [f"box{j}" for j in range(v.max_boxes)]
             + [f"ramp{k}" for k in range(v.max_ramps)])
    body_geoms = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, n) for n in names])
    bodies = np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, n) for n in names])
    slot = -np.ones(m.ngeom, dtype=np.int64)
    slot[body_geoms] = np.arange(len(names))
    ramp_centre = np.zeros(3)
    if v.max_ramps:
        ramp_centre = m.geom_pos[body_geoms[v.max_agents + v.max_boxes]].copy()
    return SceneIds(
        wall_geoms=np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, f"wall{k}")
                             for k in range(v.wall_slots)]),
        body_geoms=body_geoms, bodies=bodies, geom_body_slot=slot, ramp_centre=ramp_centre,
        grab_eq0=0, lock_eq0=v.max_agents * v.n_objects,   # build_mjcf's weld order
    )


_COMPILED = {}


def compile_variant(v: Variant) -> mujoco.MjModel:
    """The compiled model of a variant (compiled once per process; envs take copies)."""
    if v not in _COMPILED:
        _COMPILED[v] = mujoco.MjModel.from_xml_string(build_mjcf(v))
    return _COMPILED[v]


def _set_box_geom(m: mujoco.MjModel, g: int, half, enabled: bool, group: int = RAY_GROUP) -> None:
    """Resize a box geom and refresh the bounds MuJoCo's broadphase and ray culling read."""
    half = np.asarray(half, dtype=np.float64)
    m.geom_size[g] = half
    m.geom_rbound[g] = float(np.linalg.norm(half))
    m.geom_aabb[g] = np.concatenate([np.zeros(3), half])
    _enable_geom(m, g, enabled, group)


def _enable_geom(m: mujoco.MjModel, g: int, enabled: bool, group: int = RAY_GROUP) -> None:
    m.geom_contype[g] = 1 if enabled else 0
    m.geom_conaffinity[g] = 1 if enabled else 0
    m.geom_group[g] = group if enabled else HIDDEN_GROUP


@dataclasses.dataclass
class Existence:
    """Which slots of the padded scene are in play this episode."""

    agents: np.ndarray   # [A] bool
    boxes: np.ndarray    # [B] bool
    ramps: np.ndarray    # [R] bool
    hider: np.ndarray    # [A] bool (False for absent slots)
    box_long: np.ndarray  # [B] bool


def apply_layout(m: mujoco.MjModel, d: mujoco.MjData, v: Variant, ids: SceneIds,
                 layout: Layout) -> Existence:
    """Write a layout into an env's own model copy and data; returns the slots in play."""
    if len(layout.walls) > v.wall_slots:
        raise ValueError(f"layout has {len(layout.walls)} wall segments; the {v.name} scene holds "
                         f"{v.wall_slots}")
    counts = (layout.n_agents, len(layout.box_pos), len(layout.ramp_pos))
    if counts[0] > v.max_agents or counts[1] > v.max_boxes or counts[2] > v.max_ramps:
        raise ValueError(f"layout has (agents, boxes, ramps) = {counts}; the {v.name} scene holds at "
                         f"most {(v.max_agents, v.max_boxes, v.max_ramps)}")
    for k, g in enumerate(ids.wall_geoms):
        if k < len(layout.walls):
            cx, cy, hx, hy, hz, _ = layout.walls[k]
            m.geom_pos[g] = (cx, cy, hz)
            _set_box_geom(m, g, (hx, hy, hz), True)
        else:
            m.geom_pos[g] = (-20.0 - k, -20.0, -5.0)
            _set_box_geom(m, g, (0.05, 0.05, 0.05), False)
    A, B, R = v.max_agents, v.max_boxes, v.max_ramps
    box_long = np.zeros(B, dtype=bool)
    box_long[:counts[1]] = layout.box_long
    for j in range(B):
        g, body = ids.body_geoms[A + j], ids.bodies[A + j]
        half = LONG_HALF if box_long[j] else CUBE_HALF
        _set_box_geom(m, g, half, j < counts[1])
        m.body_inertia[body] = _box_inertia(half)
    for k in range(R):
        _enable_geom(m, ids.body_geoms[A + B + k], k < counts[2])
    for i in range(A):
        _enable_geom(m, ids.body_geoms[i], i < counts[0])
    mujoco.mj_setConst(m, d)
    mujoco.mj_resetData(m, d)
    d.eq_active[:] = 0
    q = d.qpos.reshape(v.n_bodies, 4)
    q[:, 0] = PARK[0] + 2.0 * np.arange(v.n_bodies)
    q[:, 1] = PARK[1]
    q[:, 2] = PARK[2]
    q[:, 3] = 0.0
    for off, pos, yaw in ((0, layout.agent_pos, layout.agent_yaw), (A, layout.box_pos, layout.box_yaw),
                          (A + B, layout.ramp_pos, layout.ramp_yaw)):
        n = len(pos)
        q[off:off + n, :3] = pos
        q[off:off + n, 3] = yaw
    mujoco.mj_forward(m, d)
    hider = np.zeros(A, dtype=bool)
    hider[:counts[0]] = layout.hider
    return Existence(agents=np.arange(A) < counts[0], boxes=np.arange(B) < counts[1],
                     ramps=np.arange(R) < counts[2], hider=hider, box_long=box_long)


def _box_inertia(half) -> List[float]:
    """Principal inertia of a unit-mass box of the given half extents."""
    x, y, z = (2 * np.asarray(half)) ** 2
    return [(y + z) / 12, (x + z) / 12, (x + y) / 12]
