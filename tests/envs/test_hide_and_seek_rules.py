"""Rules of hide-and-seek, each checked on a hand-built Scenario."""
import math

import numpy as np
import pytest

from srljax.envs.hide_and_seek import Agent, Box, Ramp, Scenario, Wall, act


def seeker_and_hider(seeker_pos=(1.0, 3.0), seeker_yaw=0.0, hider_pos=(5.0, 3.0), **kw):
    return Scenario(agents=[Agent(seeker_pos, yaw=seeker_yaw, hider=False), Agent(hider_pos, hider=True)],
                    **kw)


def test_wall_hides_and_removing_it_reveals():
    sc = seeker_and_hider(walls=[Wall((3, 1), (3, 5))])
    assert not sc.visible(0, 1)
    assert sc.obs()["agents_visible"][0, 0] == 0.0
    sc.remove_wall(0)
    assert sc.visible(0, 1)
    assert sc.obs()["agents_visible"][0, 0] == 1.0
    # the critic's existence mask does not depend on sight
    assert sc.obs()["agents_exists"][0, 0] == 1.0


def test_hider_behind_the_seekers_back_is_not_seen():
    assert seeker_and_hider(seeker_yaw=0.0).visible(0, 1)
    assert not seeker_and_hider(seeker_yaw=math.pi).visible(0, 1)
    # the cone is 135 degrees wide: 60 degrees off the heading is inside, 75 is outside
    assert seeker_and_hider(seeker_yaw=math.radians(60)).visible(0, 1)
    assert not seeker_and_hider(seeker_yaw=math.radians(75)).visible(0, 1)


def test_agent_on_a_box_sees_over_a_low_wall():
    wall = [Wall((3, 1), (3, 5))]
    on_floor = seeker_and_hider(seeker_pos=(2.5, 3.0), hider_pos=(5.5, 3.0), walls=wall)
    assert not on_floor.visible(0, 1)
    on_box = Scenario(agents=[Agent((2.5, 3.0, 0.65), hider=False), Agent((5.5, 3.0))],
                      boxes=[Box((2.5, 3.0))], walls=wall)
    on_box.step(on_box.still(), n=5)      # it rests on the box
    assert on_box.agent_pos(0)[2] == pytest.approx(0.65, abs=0.01)
    assert on_box.visible(0, 1)
    assert not on_box.visible(1, 0)       # the hider faces away (yaw 0)


def test_grab_moves_the_box_and_release_leaves_it():
    sc = Scenario(agents=[Agent((1.05, 1.0), yaw=0.0)], boxes=[Box((1.5, 1.0))])
    assert sc.sees_box(0, 0)
    start = sc.box_pos(0)
    sc.step([act(y=5, grab=True)], n=8)
    assert sc.held(0) == 0
    moved = sc.box_pos(0) - start
    assert moved[1] > 1.0                                   # carried along +y
    sc.step([act(grab=True)], n=10)                         # stop while still holding
    rest = sc.box_pos(0)
    sc.step([act(x=-5)], n=6)                               # let go and walk away
    assert sc.held(0) is None
    assert sc.agent_pos(0)[0] < 0.5
    assert np.linalg.norm(sc.box_pos(0) - rest) < 0.05


def test_grab_needs_reach_and_sight():
    far = Scenario(agents=[Agent((0.9, 1.0))], boxes=[Box((1.5, 1.0))])     # 0.35 m from the surface
    far.step([act(grab=True)])
    assert far.held(0) is None
    unseen = Scenario(agents=[Agent((1.05, 1.0), yaw=math.pi)], boxes=[Box((1.5, 1.0))])
    unseen.step([act(grab=True)])
    assert unseen.held(0) is None


def lock_scene():
    """A cube reachable by two hiders (0, 1) and a seeker (2), all looking at it."""
    return Scenario(agents=[Agent((1.05, 1.0), yaw=0.0), Agent((1.5, 1.45), yaw=-math.pi / 2),
                            Agent((1.95, 1.0), yaw=math.pi, hider=False)],
                    boxes=[Box((1.5, 1.0))])


def test_team_lock():
    sc = lock_scene()
    assert all(sc.sees_box(i, 0) for i in range(3))
    sc.step([act(lock=True), act(lock=True), act()])
    assert sc.box_lock(0) == "hider"
    obs = sc.obs()
    assert obs["boxes"][0, 0, 12:15].tolist() == [1.0, 1.0, 1.0]    # locked, by my team, by me
    assert obs["boxes"][1, 0, 12:15].tolist() == [1.0, 1.0, 0.0]
    assert obs["boxes"][2, 0, 12:15].tolist() == [1.0, 0.0, 0.0]
    start = sc.box_pos(0)
    # the seeker neither unlocks it (not pressing lock), nor re-locks it, nor moves or grabs it
    sc.step([act(lock=True), act(lock=True), act()], n=3)
    sc.step([act(lock=True), act(lock=True), act(x=-5, grab=True, lock=True)], n=5)
    assert sc.box_lock(0) == "hider"
    assert sc.held(2) is None
    assert np.linalg.norm(sc.box_pos(0) - start) < 0.02
    # the other hider, near it, seeing it and not pressing lock, unlocks it
    sc.step([act(lock=True), act(), act()])
    assert sc.box_lock(0) is None


def test_seekers_frozen_and_rewards_zero_in_preparation():
    sc = Scenario(agents=[Agent((1.0, 3.0), hider=False), Agent((5.0, 3.0), yaw=math.pi, hider=True)],
                  prep_steps=4)
    start_seeker, start_hider = sc.agent_pos(0), sc.agent_pos(1)
    rewards = [sc.step([act(x=5, turn=5, grab=True, lock=True), act(y=5)]) for _ in range(4)]
    assert np.all(np.array(rewards) == 0.0)
    assert np.linalg.norm(sc.agent_pos(0)[:2] - start_seeker[:2]) < 1e-6   # z settles by ~1e-4
    assert np.linalg.norm(sc.agent_pos(1) - start_hider) > 0.5
    assert sc.obs()["self"][0, 10] == 1.0                     # prep_obs reached 1
    sc.step([act(x=5), act()])
    assert sc.agent_pos(0)[0] > start_seeker[0] + 0.1
    assert np.all(sc.reward != 0.0)


def test_reward_signs_after_preparation():
    seen = seeker_and_hider()
    r = seen.step(seen.still())
    assert r.tolist() == [1.0, -1.0]                          # seeker +1, hider -1
    hidden = seeker_and_hider(walls=[Wall((3, 1), (3, 5))])
    r = hidden.step(hidden.still())
    assert r.tolist() == [-1.0, 1.0]
    # one team shares one reward: a second hider in plain sight costs the hidden one too
    team = Scenario(agents=[Agent((1, 3), hider=False), Agent((5, 3)), Agent((2, 1), hider=True)],
                    walls=[Wall((3, 2), (3, 5))])
    assert not team.visible(0, 1) and team.visible(0, 2)
    assert team.step(team.still()).tolist() == [1.0, -1.0, -1.0]


def test_out_of_bounds_quadrant_penalises_everyone_for_an_object():
    inside = Scenario(agents=[Agent((1, 3), hider=False), Agent((5, 3), yaw=math.pi)], boxes=[Box((3, 5))])
    assert -10.0 not in inside.step(inside.still()).tolist()
    out = Scenario(agents=[Agent((1, 3), hider=False), Agent((5, 3), yaw=math.pi)],
                   boxes=[Box((3, 5))], ramps=[Ramp((6.5, 3))], outer=False)
    assert out.step(out.still()).tolist() == [-10.0, -10.0]


def test_out_of_bounds_full_penalises_only_the_agent_outside():
    agents = [Agent((1, 3), hider=False), Agent((5, 3), hider=True), Agent((13, 3), hider=True)]
    sc = Scenario(agents=agents, boxes=[Box((8, 8))], variant="full", outer=False)
    r = sc.step(sc.still())
    assert r.tolist() == [1.0, -1.0, -10.0]       # a box outside the floor is no offence here


def test_agent_climbs_a_ramp_onto_a_box():
    # the ramp rises towards +x into a cube that rests against the outer wall
    sc = Scenario(agents=[Agent((4.5, 3.0))], boxes=[Box((5.75, 3.0))],
                  ramps=[Ramp((5.25, 3.0), yaw=math.pi / 2)])
    sc.step([act(x=5)], n=12)
    x, _, z = sc.agent_pos(0)
    assert 5.5 < x < 6.0
    assert z == pytest.approx(0.65, abs=0.02)


def test_ramp_lock_only_in_full_game():
    for variant, lockable in (("quadrant", False), ("full", True)):
        sc = Scenario(agents=[Agent((1.05, 1.0))], ramps=[Ramp((1.5, 1.0))], variant=variant)
        sc.step([act(lock=True)])
        assert (sc.ramp_lock(0) == "hider") is lockable
