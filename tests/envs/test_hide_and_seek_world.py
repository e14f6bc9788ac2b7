"""The hide-and-seek world: MuJoCo constants, lidar against analytic distances, layouts' geometry,
sight range, and the traced blow-up (a grab weld beside squeezed agents) as a regression."""
import math

import mujoco
import numpy as np
import pytest

from srljax.envs.hide_and_seek import Agent, Box, Ramp, Scenario, Wall, make_vec_env
from srljax.envs.hide_and_seek import layout as L
from srljax.envs.hide_and_seek import observations as O
from srljax.envs.hide_and_seek import scene as S
from srljax.envs.hide_and_seek.env import HideAndSeekVecEnv


def geom(m, name):
    return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, name)


def joint_dof(m, name):
    return m.jnt_dofadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)]


# ----------------------------------------------------------------------------- world constants

@pytest.mark.parametrize("variant", ["quadrant", "full"])
def test_world_constants(variant):
    env = make_vec_env(variant, num_envs=1, seed=0)
    m = env.models[0]
    assert S.TIMESTEP == 0.005 and m.opt.timestep == 0.005 and S.SUBSTEPS == 15
    np.testing.assert_array_equal(m.opt.gravity, [0.0, 0.0, -50.0])
    assert m.opt.jacobian == mujoco.mjtJacobian.mjJAC_DENSE      # the stability fix (scene.py)
    env.reset(0)
    env.step(np.tile([5, 5, 5, 0, 0], (1, env.num_agents, 1)))
    assert env.datas[0].time == pytest.approx(15 * 0.005)         # one env step = 0.075 s
    # floor 6 m x 6 m centred on (3, 3), friction 0.2
    f = geom(m, "floor")
    np.testing.assert_allclose(m.geom_pos[f], [3.0, 3.0, 0.0])
    assert m.geom_size[f][:2].tolist() == [3.0, 3.0] and m.geom_friction[f][0] == 0.2
    for i in range(env.num_agents):
        g = geom(m, f"agent{i}")
        assert m.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE and m.geom_size[g][0] == 0.15
        assert m.body_mass[m.geom_bodyid[g]] == pytest.approx(1.0)
        assert m.geom_friction[g][0] == 0.01
        for j, damping in (("x", 10.0), ("y", 10.0), ("z", 0.0), ("r", 10.0)):
            assert m.dof_damping[joint_dof(m, f"a{i}{j}")] == damping
    np.testing.assert_array_equal(m.actuator_gear[:, 0], 100.0)
    for j in range(env.num_boxes):
        g = geom(m, f"box{j}")
        assert m.body_mass[m.geom_bodyid[g]] == pytest.approx(1.0) and m.geom_friction[g][0] == 0.2
    for k in range(env.num_ramps):
        g = geom(m, f"ramp{k}")
        assert m.body_mass[m.geom_bodyid[g]] == pytest.approx(1.0) and m.geom_friction[g][0] == 0.01
    for k in range(env.spec.wall_slots):
        assert m.geom_friction[geom(m, f"wall{k}")][0] == 0.01
    assert L.CUBE_HALF == (0.25, 0.25, 0.25) and L.LONG_HALF == (0.825, 0.075, 0.25)
    assert L.WALL_THICK == 0.1 and L.INNER_WALL_H == 0.5 and L.OUTER_WALL_H == 4.0
    assert L.DOOR == 0.7 and L.FLOOR == 6.0 and L.CELL == 0.2 and L.GRID == 30


def test_box_sizes_in_the_scene_and_the_ramp_wedge():
    sc = Scenario(agents=[Agent((1, 1))], boxes=[Box((2, 3)), Box((4, 3), long=True)],
                  ramps=[Ramp((2, 5))], variant="full")
    m, d = sc.env.models[0], sc.env.datas[0]
    np.testing.assert_allclose(m.geom_size[geom(m, "box0")], [0.25, 0.25, 0.25])
    np.testing.assert_allclose(m.geom_size[geom(m, "box1")], [0.825, 0.075, 0.25])
    # unit mass, box inertia of its size
    b = m.geom_bodyid[geom(m, "box1")]
    np.testing.assert_allclose(m.body_inertia[b], [(0.15 ** 2 + 0.25) / 12, (1.65 ** 2 + 0.25) / 12,
                                                   (1.65 ** 2 + 0.15 ** 2) / 12])
    # ramp: a 45-degree wedge filling the 0.5 m cube on the floor, high edge towards -y at yaw 0
    g = geom(m, "ramp0")
    vid = m.mesh_vertadr[m.geom_dataid[g]]
    local = m.mesh_vert[vid:vid + m.mesh_vertnum[m.geom_dataid[g]]]
    world = d.geom_xpos[g] + local @ d.geom_xmat[g].reshape(3, 3).T
    np.testing.assert_allclose(world.min(0), [1.75, 4.75, 0.0], atol=1e-6)
    np.testing.assert_allclose(world.max(0), [2.25, 5.25, 0.5], atol=1e-6)
    top = world[world[:, 2] > 0.25]
    assert len(top) == 2 and np.allclose(top[:, 1], 4.75)          # the high edge at y = 4.75
    assert m.body_mass[m.geom_bodyid[g]] == pytest.approx(1.0)


def door_gaps(walls):
    """Gaps between collinear interior segments of a layout, along each wall line."""
    gaps = []
    inner = walls[walls[:, 5] == 0]
    for axis in (0, 1):       # axis 0: wall on x = line (thin in x)
        thin = inner[np.isclose(inner[:, 2 + axis], L.WALL_THICK / 2)]
        for line in np.unique(np.round(thin[:, axis], 6)):
            seg = thin[np.isclose(thin[:, axis], line)]
            o = 1 - axis
            spans = sorted((s[o] - s[2 + o], s[o] + s[2 + o]) for s in seg)
            gaps += [b[0] - a[1] for a, b in zip(spans, spans[1:]) if b[0] - a[1] > 1e-6]
    return gaps


def test_wall_heights_thickness_and_door_width():
    rng = np.random.default_rng(0)
    n_doors = 0
    for variant in ("quadrant", "full"):
        for _ in range(100):
            lay = L.draw_layout(variant, rng)
            w = lay.walls
            outer, inner = w[w[:, 5] == 1], w[w[:, 5] == 0]
            np.testing.assert_array_equal(outer[:, 4], 2.0)          # 4 m tall
            np.testing.assert_array_equal(inner[:, 4], 0.25)         # 0.5 m tall
            assert np.allclose(np.minimum(w[:, 2], w[:, 3]), 0.05)   # 0.1 m thick
            gaps = door_gaps(w)
            np.testing.assert_allclose(gaps, 0.7, atol=1e-9)
            n_doors += len(gaps)
    assert n_doors > 100
    # the compiled wall geoms follow the layout: on the floor, its sizes
    env = make_vec_env("quadrant", num_envs=1, seed=2)
    env.reset(2)
    m = env.models[0]
    lay = L.draw_layout("quadrant", np.random.default_rng(np.random.SeedSequence(2).spawn(1)[0]))
    for k, row in enumerate(lay.walls):
        g = env.ids.wall_geoms[k]
        np.testing.assert_allclose(m.geom_size[g], row[2:5])
        np.testing.assert_allclose(m.geom_pos[g], [row[0], row[1], row[4]])


# ----------------------------------------------------------------------------- quadrant cubes

def test_quadrant_cubes_lie_wholly_inside_the_room():
    x0, y0, x1, y1 = 3.05, 0.0, 6.0, 2.95                 # inside the walls' inner faces
    rng = np.random.default_rng(11)
    lo_x, hi_y = np.inf, -np.inf
    for _ in range(3000):
        lay = L.draw_layout("quadrant", rng)
        bx, by = lay.box_pos[:, 0], lay.box_pos[:, 1]
        assert (bx - 0.25 >= x0 - 1e-9).all() and (bx + 0.25 <= x1 + 1e-9).all()
        assert (by - 0.25 >= y0 - 1e-9).all() and (by + 0.25 <= y1 + 1e-9).all()
        lo_x, hi_y = min(lo_x, bx.min()), max(hi_y, by.max())
    assert lo_x == pytest.approx(3.3) and hi_y == pytest.approx(2.7)   # the cells next to the walls
    env = make_vec_env("quadrant", num_envs=25, seed=0)
    for seed in range(8):                                   # 200 env resets
        env.reset(seed)
        box = env.q[:, env.num_agents:env.num_agents + 2, :2]
        assert (box[..., 0] - 0.25 >= x0 - 1e-9).all() and (box[..., 1] + 0.25 <= y1 + 1e-9).all()


# ----------------------------------------------------------------------------- lidar

def analytic_square(x, y, lo=0.0, hi=6.0):
    """Distances from (x, y) along the 30 lidar directions to the inside of the square [lo, hi]^2."""
    out = []
    for a in 2 * np.pi * np.arange(30) / 30:
        c, s = math.cos(a), math.sin(a)
        t = []
        if abs(c) > 1e-12:
            t.append(((hi if c > 0 else lo) - x) / c)
        if abs(s) > 1e-12:
            t.append(((hi if s > 0 else lo) - y) / s)
        out.append(min(min(t), O.LIDAR_RANGE))
    return np.array(out)


@pytest.mark.parametrize("pos", [(1.0, 2.0), (3.0, 3.0), (5.5, 0.4)])
def test_lidar_matches_distances_to_the_outer_walls(pos):
    sc = Scenario(agents=[Agent(pos)])
    lidar = sc.env.lidar[0, 0]
    np.testing.assert_allclose(lidar, analytic_square(*pos), atol=1e-9)
    np.testing.assert_allclose(sc.obs()["lidar"][0], analytic_square(*pos), atol=1e-5)
    np.testing.assert_allclose(O.LIDAR_DIRS[:, :2], np.stack([np.cos(np.deg2rad(np.arange(0, 360, 12))),
                                                             np.sin(np.deg2rad(np.arange(0, 360, 12)))], 1),
                               atol=1e-12)


def ray_box(o, u, centre, half):
    """Distance along unit ray (o, u) in the plane to an axis-aligned rectangle (slab method)."""
    t0, t1 = -np.inf, np.inf
    for k in range(2):
        lo, hi = centre[k] - half[k], centre[k] + half[k]
        if abs(u[k]) < 1e-12:
            if not lo <= o[k] <= hi:
                return np.inf
            continue
        a, b = sorted(((lo - o[k]) / u[k], (hi - o[k]) / u[k]))
        t0, t1 = max(t0, a), min(t1, b)
    return t0 if t0 <= t1 and t0 > 0 else np.inf


def ray_circle(o, u, centre, r):
    oc = np.asarray(centre) - o
    b = oc @ u
    disc = b * b - (oc @ oc - r * r)
    return b - math.sqrt(disc) if disc >= 0 and b > 0 else np.inf


def test_lidar_matches_analytic_distances_to_boxes_agents_and_walls():
    me, other = (1.0, 1.2), (3.5, 0.7)
    cube, long = (2.5, 2.0), (1.2, 4.0)
    sc = Scenario(agents=[Agent(me), Agent(other)], boxes=[Box(cube), Box(long, long=True)],
                  walls=[Wall((4.5, 0.5), (4.5, 5.0))])
    o = np.array(me)
    want = analytic_square(*me)
    for k, ang in enumerate(2 * np.pi * np.arange(30) / 30):
        u = np.array([math.cos(ang), math.sin(ang)])
        t = min(ray_box(o, u, cube, (0.25, 0.25)), ray_box(o, u, long, (0.825, 0.075)),
                ray_box(o, u, (4.5, 2.75), (0.05, 2.25)), ray_circle(o, u, other, 0.15))
        want[k] = min(want[k], t)
    assert (want < analytic_square(*me)).sum() >= 8        # the objects cut 8 of the 30 rays short
    np.testing.assert_allclose(sc.env.lidar[0, 0], want, atol=1e-9)


def test_lidar_on_the_ramp_wedge():
    # a ramp at yaw -pi/2 rises towards -x: its vertical back face is at x = 3.75, its slope
    # (world z = 0.25 - local y, local y = x - 4) meets a lidar ray at z = 0.15 at x = 4.1
    east = Scenario(agents=[Agent((6.0, 3.0))], ramps=[Ramp((4.0, 3.0), yaw=-math.pi / 2)], outer=False)
    assert east.env.lidar[0, 0, 15] == pytest.approx(6.0 - 4.1)          # ray 15: 180 degrees
    west = Scenario(agents=[Agent((2.0, 3.0))], ramps=[Ramp((4.0, 3.0), yaw=-math.pi / 2)], outer=False)
    assert west.env.lidar[0, 0, 0] == pytest.approx(3.75 - 2.0)          # ray 0: 0 degrees
    # nothing in range: the ray length is clipped to 6 m
    far = Scenario(agents=[Agent((2.0, 3.0))], ramps=[Ramp((8.5, 3.0))], outer=False)
    assert far.env.lidar[0, 0, 0] == 6.0 and far.obs()["lidar"][0].max() == 6.0


# ----------------------------------------------------------------------------- sight range

@pytest.mark.parametrize("dist", [39.0, 41.0, 150.0, 2000.0])
def test_sight_has_no_distance_limit(dist):
    sc = Scenario(agents=[Agent((0.0, 3.0), hider=False), Agent((dist, 3.0))], variant="full",
                  outer=False)
    assert sc.visible(0, 1)
    assert sc.obs()["agents_visible"][0, 0] == 1.0
    assert O.RAY_CUTOFF >= 1e6


# ----------------------------------------------------------------------------- traced blow-up

# State of the one traced unstable episode (hns/full, mujoco 4.0.0, before the fix): a seeker
# (row 0) holding an elongated box (row 3) by a grab weld, beside two seekers squeezed against the
# outer wall y = 6. Rows are (x, y, z, yaw) and their rates; the last substep's accelerations are
# the solver's warm start. The sparse Newton solve of the next substep returned 1e7 N contact forces.
TRACE_Q = np.array([[1.990217718442479, 5.560620040627859, 0.15030961833609738, -2.4126165218374522],
                    [2.054948991992228, 5.849329292365705, 0.15037288853238442, 0.7054872748306562],
                    [2.3330850118859128, 5.869002236906033, 0.1462870760551709, -2.6824163484844346],
                    [0.8714297218179345, 5.353185339195219, 0.2508568203172064, 0.2591286136619422]])
TRACE_QD = np.array([[-3.117255191045776, 2.2556683743150163, 0.16087477392765925, 5.602349204664611],
                     [0.10272625430940452, -0.27153760970396457, -0.20731617624343346, -3.570187330290398],
                     [-0.9453482669476106, 1.7308899845492802, -0.27452386023195097, 0.02981266966447438],
                     [-3.4931242656797505, -2.6466640800807997, 0.0865816291664907, 5.269666312201084]])
TRACE_WARM = np.array([[-26.816280976914832, -8.887570197073437, 106.83334844861844, 793.0413850277589],
                       [-131.8880246070939, -2.1197503903543327, -47.398752936460646, -14.08895100962435],
                       [178.5355557397958, -420.12309827354665, 84.24045710099304, -14.088950681043256],
                       [44.451068831525276, -14.066567826934573, 91.67689165129194, 28.86506884204014]])
TRACE_CTRL = np.array([0.18, 0.0, 0.36, 0.54, -0.18, -0.72, 0.36, -0.9, 0.0])
TRACE_WELD = np.array([0.708570202815512, -0.7924325351439467, 0.10088585535700084,
                       0.3574543767258774, 0.0, 0.0, 0.9339306015756816])


def test_traced_blow_up_state_steps_stably(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)             # MuJoCo writes MUJOCO_LOG.TXT on a blow-up
    lay = L.Layout(walls=np.array(L.outer_walls()), agent_pos=TRACE_Q[:3, :3], agent_yaw=TRACE_Q[:3, 3],
                   hider=np.zeros(3, bool), box_pos=TRACE_Q[3:, :3], box_yaw=TRACE_Q[3:, 3],
                   box_long=np.ones(1, bool), ramp_pos=np.zeros((0, 3)), ramp_yaw=np.zeros(0))
    env = HideAndSeekVecEnv("full", num_envs=1, layout_fn=lambda rng: lay)   # the full game's 68 dofs
    env.reset(0)
    m, d = env.models[0], env.datas[0]
    assert m.nv == 68
    bodies = [0, 1, 2, env.num_agents]          # three agents and box 0
    q, qd, w = d.qpos.reshape(-1, 4), d.qvel.reshape(-1, 4), d.qacc_warmstart.reshape(-1, 4)
    q[bodies], qd[bodies], w[bodies] = TRACE_Q, TRACE_QD, TRACE_WARM
    eq = env.ids.grab_eq0 + 0 * env.spec.n_objects + 0          # grab (agent 0, box 0)
    m.eq_data[eq, 3:10] = TRACE_WELD
    d.eq_active[eq] = 1
    d.ctrl[:9] = TRACE_CTRL
    for _ in range(S.SUBSTEPS):
        mujoco.mj_step(m, d)
        assert d.solver_niter[:max(d.nisland, 1)].max() < m.opt.iterations
        assert np.abs(d.qvel.reshape(-1, 4)[bodies]).max() < 20.0
        assert min([c.dist for c in d.contact[:d.ncon]], default=0.0) > -0.05
    assert d.time == pytest.approx(15 * 0.005)          # no reset by MuJoCo
