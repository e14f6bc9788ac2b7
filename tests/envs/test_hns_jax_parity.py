"""The JAX game (`hns_jax`) against the MuJoCo game's rules, rule by rule.

Every hand-built scenario of the MuJoCo game's rule tests (test_hide_and_seek_rules.py and
test_hide_and_seek_rules_exact.py: grab and lock at and just past the range edge, unlocking by each
team, sight blocked by a wall, a box, a ramp and an agent, the cone's edge, sight from a box over a
0.5 m wall, out of bounds in both variants, the preparation phase, the stage statistics) runs here
again on `JaxScenario`, which takes the same arguments and answers the same questions: the same
assertions hold on both games. Beside them: a door closed by locked boxes keeps a seeker out in both,
and the observations of random layouts at their start agree entry by entry.
"""
import math

import jax
import numpy as np
import pytest

from srljax.envs.hide_and_seek import Agent, Box, HideAndSeekVecEnv, Scenario, Wall, act, draw_layout
from srljax.envs.hide_and_seek.scene import VARIANTS
from srljax.envs.hns_jax import HideAndSeekJax
from srljax.envs.hns_jax.layouts import layout_arrays, stack
from srljax.envs.hns_jax.scenario import JaxScenario
from tests.envs import test_hide_and_seek_rules as rules_tests
from tests.envs import test_hide_and_seek_rules_exact as exact_tests

SCENARIO_TESTS = [
    (rules_tests, "test_wall_hides_and_removing_it_reveals", {}),
    (rules_tests, "test_hider_behind_the_seekers_back_is_not_seen", {}),
    (rules_tests, "test_agent_on_a_box_sees_over_a_low_wall", {}),
    (rules_tests, "test_grab_moves_the_box_and_release_leaves_it", {}),
    (rules_tests, "test_grab_needs_reach_and_sight", {}),
    (rules_tests, "test_team_lock", {}),
    (rules_tests, "test_seekers_frozen_and_rewards_zero_in_preparation", {}),
    (rules_tests, "test_reward_signs_after_preparation", {}),
    (rules_tests, "test_out_of_bounds_quadrant_penalises_everyone_for_an_object", {}),
    (rules_tests, "test_out_of_bounds_full_penalises_only_the_agent_outside", {}),
    (rules_tests, "test_agent_climbs_a_ramp_onto_a_box", {}),
    (rules_tests, "test_ramp_lock_only_in_full_game", {}),
    (exact_tests, "test_reach_is_025_m_from_the_agent_centre_to_the_face", {"lock": False}),
    (exact_tests, "test_reach_is_025_m_from_the_agent_centre_to_the_face", {"lock": True}),
    (exact_tests, "test_grab_and_lock_need_sight_at_the_cone_edge", {}),
    (exact_tests, "test_grab_takes_the_closest_reachable_seen_object", {}),
    (exact_tests, "test_boxes_ramps_agents_and_walls_block_sight", {}),
    (exact_tests, "test_the_cone_edge_is_exactly_675_degrees", {}),
    (exact_tests, "test_out_of_bounds_in_the_game_just_inside_and_just_outside", {}),
    (exact_tests, "test_stage_statistics_values", {}),
]


@pytest.mark.parametrize("module,name,kwargs", SCENARIO_TESTS,
                         ids=[f"{n}{'-lock' if k.get('lock') else ''}" for _, n, k in SCENARIO_TESTS])
def test_the_mujoco_games_rule_holds_in_the_jax_game(module, name, kwargs, monkeypatch):
    monkeypatch.setattr(module, "Scenario", JaxScenario)
    getattr(module, name)(**kwargs)


@pytest.mark.parametrize("game", [Scenario, JaxScenario], ids=["mujoco", "jax"])
def test_a_door_closed_by_locked_boxes_keeps_a_seeker_out(game):
    """A room's wall at x = 3 with a 0.7 m door at y = 3: two cubes locked in the doorway by the
    hiders inside, who keep pressing lock (a team member near a locked box, seeing it and not
    pressing lock, unlocks it); the seeker outside runs at the door for 3 s and stays outside."""
    walls = [Wall((3, 0), (3, 2.65)), Wall((3, 3.35), (3, 6))]
    agents = [Agent((3.7, 2.75), yaw=math.pi), Agent((3.7, 3.25), yaw=math.pi), Agent((1.0, 3.0), hider=False)]
    boxes = [Box((3.3, 2.75)), Box((3.3, 3.25))]
    sc = game(agents=agents, boxes=boxes, walls=walls)
    sc.step([act(lock=True), act(lock=True), act()])
    assert sc.box_lock(0) == "hider" and sc.box_lock(1) == "hider"
    sc.step([act(lock=True), act(lock=True), act(x=5)], n=40)
    assert sc.agent_pos(2)[0] < 3.0 - 0.05
    for k, y in ((0, 2.75), (1, 3.25)):
        assert np.linalg.norm(sc.box_pos(k)[:2] - (3.3, y)) < 0.02


@pytest.mark.parametrize("variant", ["quadrant", "full"])
def test_observations_at_the_start_of_random_layouts_agree(variant):
    """30 layouts from the MuJoCo game's generator: every observation entry of both games agrees
    (lidar to 2 cm), except rays that graze an edge exactly: agents, objects and door edges sit on
    one 0.1 m lattice, so a lidar ray along a wall's face or a sight line through a box's corner is
    common, and which side of it each engine's arithmetic lands on is chance. At most 1% of the lidar
    rays and of the visibility flags may differ."""
    v = VARIANTS[variant]
    rng = np.random.default_rng(5)
    layouts = [draw_layout(variant, rng) for _ in range(30)]
    rows = stack([layout_arrays(lay, v) for lay in layouts])
    env = HideAndSeekJax(variant, layouts=1)
    starts = jax.jit(jax.vmap(env.start))(rows, jax.random.split(jax.random.key(0), len(layouts)))
    rays = bad_rays = flags = bad_flags = 0
    for i, lay in enumerate(layouts):
        mj = HideAndSeekVecEnv(variant, num_envs=1, layout_fn=lambda r, lay=lay: lay).reset(0)
        assert sorted(mj) == sorted(starts.obs)
        for k, want in mj.items():
            got = np.asarray(starts.obs[k][i])
            assert got.shape == want[0].shape, k
            if k == "lidar":
                rays += got.size
                bad_rays += int(np.sum(~np.isclose(got, want[0], atol=0.02)))
            elif k.endswith("_visible"):
                flags += got.size
                bad_flags += int(np.sum(got != want[0]))
            else:
                np.testing.assert_allclose(got, want[0], atol=1e-4, err_msg=f"layout {i}, {k}")
    assert bad_rays <= 0.01 * rays, (bad_rays, rays)
    assert bad_flags <= 0.01 * flags, (bad_flags, flags)
