"""Rules of hide-and-seek at their exact boundaries: reach of grab and lock, the sight rule, what
blocks sight, the cone's edge, the out-of-bounds lines, and the stage statistics' values."""
import math

import numpy as np
import pytest

from srljax.envs.hide_and_seek import Agent, Box, Ramp, Scenario, Wall, act
from srljax.envs.hide_and_seek import rules

EPS = 1e-6


# ----------------------------------------------------------------------------- grab and lock reach

def grabs(agent_pos, yaw, box=None, ramp=None, lock=False, variant="quadrant"):
    """Whether the single agent's first grab (or lock) action takes the object."""
    sc = Scenario(agents=[Agent(agent_pos, yaw=yaw)], boxes=[box] if box else [],
                  ramps=[ramp] if ramp else [], variant=variant)
    sc.step([act(grab=not lock, lock=lock)])
    if lock:
        return (sc.box_lock(0) if box else sc.ramp_lock(0)) == "hider"
    return sc.held(0) == 0


@pytest.mark.parametrize("lock", [False, True])
def test_reach_is_025_m_from_the_agent_centre_to_the_face(lock):
    assert rules.REACH == 0.25
    cube = Box((1.5, 1.0))                            # face at x = 1.25
    assert grabs((1.0 + EPS, 1.0), 0.0, box=cube, lock=lock)
    assert not grabs((1.0 - EPS, 1.0), 0.0, box=cube, lock=lock)
    # an elongated box turned by 90 degrees: half extents 0.075 along x, 0.825 along y
    turned = Box((2.0, 2.0), yaw=math.pi / 2, long=True)
    x = 2.0 - 0.075 - 0.25
    assert grabs((x + EPS, 2.6), 0.0, box=turned, lock=lock)
    assert not grabs((x - EPS, 2.6), 0.0, box=turned, lock=lock)
    # off a corner the reach is a quarter circle: (1.25, 0.75) is the cube's corner
    r = 0.25 / math.sqrt(2)
    yaw = math.pi / 4                                  # towards the cube's centre
    assert grabs((1.25 - r + EPS, 0.75 - r + EPS), yaw, box=cube, lock=lock)
    assert not grabs((1.25 - r - EPS, 0.75 - r - EPS), yaw, box=cube, lock=lock)
    # a ramp is reached at its 0.5 m bounding cube, also on the low side of the wedge
    ramp = Ramp((1.5, 1.0))                            # rises towards -y; the +y side is low
    assert grabs((1.5, 1.5 - EPS), -math.pi / 2, ramp=ramp, lock=lock, variant="full")
    assert not grabs((1.5, 1.5 + EPS), -math.pi / 2, ramp=ramp, lock=lock, variant="full")


def test_surface_distance_is_euclidean_to_the_yawed_box():
    agent = np.array([[[0.0, 0.0, 0.15], [2.0, 0.3, 0.9], [1.0, 1.0, 0.25]]])
    obj = np.array([[[1.0, 1.0, 0.25]]])
    yaw = np.array([[math.pi / 4]])
    d = rules.surface_distance(agent, obj, np.cos(yaw), np.sin(yaw), np.array([[[0.25, 0.25, 0.25]]]))
    # (0, 0, 0.15): along the diagonal, which the cube turned by 45 degrees faces squarely
    assert d[0, 0, 0] == pytest.approx(math.sqrt(2) - 0.25)
    # (2, 0.3, 0.9): in the cube's frame, beyond two faces and 0.4 m above the top
    lx, ly = (1.0 + -0.7) / math.sqrt(2), (-1.0 + -0.7) / math.sqrt(2)
    ex = [max(abs(lx) - 0.25, 0), max(abs(ly) - 0.25, 0), 0.9 - 0.5]
    assert d[0, 1, 0] == pytest.approx(math.sqrt(sum(e * e for e in ex)))
    assert d[0, 2, 0] == 0.0                           # inside


def test_grab_and_lock_need_sight_at_the_cone_edge():
    half = math.radians(67.5)
    cube = Box((1.5, 1.0))                    # centre straight along +x from the agent
    for lock in (False, True):
        assert grabs((1.1, 1.0), half - EPS, box=cube, lock=lock)
        assert not grabs((1.1, 1.0), half + EPS, box=cube, lock=lock)
        assert grabs((1.1, 1.0), -(half - EPS), box=cube, lock=lock)
        assert not grabs((1.1, 1.0), -(half + EPS), box=cube, lock=lock)


def test_grab_takes_the_closest_reachable_seen_object():
    boxes = [Box((1.95, 1.5)), Box((1.4, 2.0))]                       # 0.2 and 0.25 m away
    sc = Scenario(agents=[Agent((1.5, 1.5), yaw=math.pi / 4)], boxes=boxes)
    assert sc.sees_box(0, 0) and sc.sees_box(0, 1)
    sc.step([act(grab=True)])
    assert sc.held(0) == 0
    # the nearer one outside the cone is not seen: the farther one in front is taken
    sc = Scenario(agents=[Agent((1.5, 1.5), yaw=math.pi / 2)], boxes=boxes)
    assert not sc.sees_box(0, 0) and sc.sees_box(0, 1)
    sc.step([act(grab=True)])
    assert sc.held(0) == 1


# ----------------------------------------------------------------------------- sight

def line_of_sight(blockers=(), walls=(), seeker_yaw=0.0, hider=(5.0, 3.0), extra_agents=()):
    boxes = [b for b in blockers if isinstance(b, Box)]
    ramps = [r for r in blockers if isinstance(r, Ramp)]
    agents = [Agent((1.0, 3.0), yaw=seeker_yaw, hider=False), Agent(hider, yaw=math.pi)]
    sc = Scenario(agents=agents + list(extra_agents), boxes=boxes, ramps=ramps, walls=walls)
    return sc.visible(0, 1)


def test_boxes_ramps_agents_and_walls_block_sight():
    assert line_of_sight()
    assert not line_of_sight([Box((3.0, 3.0))])
    assert not line_of_sight([Box((3.0, 3.0), yaw=math.pi / 2, long=True)])
    # an elongated box lying along the line of sight, 0.1 m aside of it, does not block
    assert line_of_sight([Box((3.0, 3.0 + 0.075 + 0.1), long=True)])
    assert not line_of_sight(extra_agents=[Agent((3.0, 3.0))])
    assert line_of_sight(extra_agents=[Agent((3.0, 3.0 + 0.15 + 0.01))])     # just beside the line
    assert not line_of_sight(walls=[Wall((3.0, 2.0), (3.0, 4.0))])
    # the ramp blocks where its wedge is above the line (z = 0.15), not where it is below:
    # at yaw 0 the slope's height is 0.25 - local y, so at local y = 0 it is 0.25 m high
    assert not line_of_sight([Ramp((3.0, 3.0))])
    assert not line_of_sight([Ramp((3.0, 3.0 - 0.1 + 0.01))])      # 0.16 m high on the line
    assert line_of_sight([Ramp((3.0, 3.0 - 0.1 - 0.01))])          # 0.14 m high: seen over it


def test_the_cone_edge_is_exactly_675_degrees():
    half = math.radians(67.5)
    for sign in (1, -1):
        assert line_of_sight(seeker_yaw=sign * (half - EPS))
        assert not line_of_sight(seeker_yaw=sign * (half + EPS))
    # also for objects, and in the horizontal plane only: height does not narrow the cone
    sc = Scenario(agents=[Agent((1.0, 1.0), yaw=-(half - EPS))], boxes=[Box((3.0, 1.0))])
    assert sc.sees_box(0, 0)
    sc = Scenario(agents=[Agent((1.0, 1.0), yaw=half + EPS)], boxes=[Box((3.0, 1.0))])
    assert not sc.sees_box(0, 0)
    high = Scenario(agents=[Agent((1.0, 3.0), yaw=half - EPS, hider=False), Agent((3.0, 3.0, 0.65))],
                    boxes=[Box((3.0, 3.0))])
    assert high.visible(0, 1)                     # on a box, 0.5 m up, still inside the cone


# ----------------------------------------------------------------------------- out of bounds

def test_out_of_bounds_lines_exact():
    ex = np.array([[True, True]])
    none = np.zeros((1, 0, 2)), np.zeros((1, 0), bool)
    for lo, hi, variant in ((0.1, 5.9, "quadrant"), (-6.0, 12.0, "full")):
        for x, out in ((lo, False), (lo - EPS, True), (hi, False), (hi + EPS, True)):
            for xy in ((x, 3.0), (3.0, x)):
                pen, _ = rules.out_of_bounds(variant, np.array([[xy, (3.0, 3.0)]]), ex, *none)
                assert pen.tolist() == [[out, False]], (variant, xy)
    # quadrant: an object across a line penalises every agent; the full game ignores objects
    agents = np.array([[(3.0, 3.0), (3.0, 3.0)]])
    for x, out in ((0.1, False), (0.1 - EPS, True), (5.9, False), (5.9 + EPS, True)):
        pen, obj_out = rules.out_of_bounds("quadrant", agents, ex, np.array([[(x, 3.0)]]), np.ones((1, 1), bool))
        assert pen.tolist() == [[out, out]] and obj_out.tolist() == [out]
        pen, _ = rules.out_of_bounds("full", agents, ex, np.array([[(x, 3.0)]]), np.ones((1, 1), bool))
        assert not pen.any()
    # absent objects and agents do not count
    pen, _ = rules.out_of_bounds("quadrant", agents, ex, np.array([[(-1.0, 3.0)]]), np.zeros((1, 1), bool))
    assert not pen.any()
    pen, _ = rules.out_of_bounds("full", np.array([[(-7.0, 3.0), (3.0, 3.0)]]), np.array([[False, True]]), *none)
    assert not pen.any()


def test_out_of_bounds_in_the_game_just_inside_and_just_outside():
    def quad_reward(ramp_x):
        sc = Scenario(agents=[Agent((1, 3), hider=False), Agent((5, 3), yaw=math.pi)],
                      ramps=[Ramp((ramp_x, 3.0))], outer=False)
        return sc.step(sc.still()).tolist()
    assert quad_reward(5.9 - 0.01) == [1.0, -1.0]
    assert quad_reward(5.9 + 0.01) == [-10.0, -10.0]
    assert quad_reward(0.1 + 0.01) == [1.0, -1.0]
    assert quad_reward(0.1 - 0.01) == [-10.0, -10.0]

    def full_reward(x):
        sc = Scenario(agents=[Agent((1, 3), hider=False), Agent((5, 3)), Agent((x, 3.0))],
                      variant="full", outer=False)
        return sc.step(sc.still()).tolist()
    assert full_reward(12.0 - 0.01) == [1.0, -1.0, -1.0]
    assert full_reward(12.0 + 0.01) == [1.0, -1.0, -10.0]
    assert full_reward(-6.0 + 0.01) == [1.0, -1.0, -1.0]
    assert full_reward(-6.0 - 0.01) == [1.0, -1.0, -10.0]


# ----------------------------------------------------------------------------- stage statistics

def test_stage_statistics_values():
    """Hider 0 locks a cube and hider 1 a ramp during preparation; after it, hider 0 unlocks the
    cube and drags it away while the ramp stays locked; a seeker watches hider 2 walk out from
    behind a wall."""
    prep, horizon = 3, 12
    agents = [Agent((1.05, 1.0), yaw=0.0), Agent((1.05, 3.0), yaw=0.0),
              Agent((4.0, 3.9), yaw=0.0), Agent((1.0, 5.0), yaw=0.0, hider=False)]
    sc = Scenario(agents=agents, boxes=[Box((1.5, 1.0)), Box((4.5, 0.5))], ramps=[Ramp((1.5, 3.0))],
                  walls=[Wall((2.5, 4.2), (2.5, 5.8))], variant="full", prep_steps=prep, horizon=horizon)
    start = [sc.box_pos(0), sc.box_pos(1), sc.ramp_pos(0)]
    rewards, ep = [], None
    plan = ([[act(lock=True), act(lock=True), act(), act()]] * prep
            + [[act(), act(lock=True), act(y=-5), act()]]                  # unlock (no lock pressed)
            + [[act(x=-5, grab=True), act(lock=True), act(y=-5), act()]] * (horizon - prep - 1))
    for t, a in enumerate(plan):
        r = sc.step(a)
        rewards.append(r.copy())
        if t == prep - 1:          # end of preparation: the stats' first snapshot
            prep_box = max(np.linalg.norm(sc.box_pos(k) - start[k]) for k in range(2))
            prep_ramp = np.linalg.norm(sc.ramp_pos(0) - start[2])
            assert sc.box_lock(0) == "hider" and sc.ramp_lock(0) == "hider"
        if sc.info["episodes"]:
            ep = sc.info["episodes"][0]
    assert ep is not None and ep["length"] == horizon and not ep["unstable"]
    final = sc.info["final_obs"]
    box_end = final["boxes"][0, 0, 0, :3], final["boxes"][0, 0, 1, :3]    # as agent 0 observes them
    ramp_end = final["ramps"][0, 0, 0, :3]
    rewards = np.array(rewards)
    assert ep["num_box_lock_prep"] == 1 and ep["num_ramp_lock_prep"] == 1
    assert ep["num_box_lock"] == 0 and ep["num_ramp_lock"] == 1
    assert ep["max_box_move_prep"] == pytest.approx(prep_box, abs=1e-9) and prep_box < 0.01
    assert ep["max_ramp_move_prep"] == pytest.approx(prep_ramp, abs=1e-9)
    moved = max(np.linalg.norm(box_end[k] - start[k]) for k in range(2))
    assert ep["max_box_move"] == pytest.approx(moved, abs=1e-5) and moved > 0.5
    assert ep["max_ramp_move"] == pytest.approx(np.linalg.norm(ramp_end - start[2]), abs=1e-5)
    assert ep["max_ramp_move"] < 0.01
    # returns: sums of the per-step rewards, zero in preparation; seen fraction over the rest
    assert (rewards[:prep] == 0).all()
    assert ep["hider_return"] == pytest.approx(rewards[:, 0].sum())
    assert ep["seeker_return"] == pytest.approx(rewards[:, 3].sum())
    assert ep["return"] == pytest.approx(rewards.sum(1).sum() / 4)
    seen = rewards[prep:, 0] < 0
    assert ep["hider_seen_frac"] == pytest.approx(seen.mean())
    assert ep["hider_seen_frac"] == pytest.approx(8 / 9)   # hidden 1 of 9 rewarded steps, then seen
    assert ep["hider_return"] == 1 - 8 and ep["seeker_return"] == 8 - 1 and ep["return"] == -3.5
    assert ep["n_hiders"] == 3 and ep["n_seekers"] == 1
