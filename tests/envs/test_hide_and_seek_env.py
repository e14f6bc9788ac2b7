"""The batched hide-and-seek vector env: layouts, interface, determinism, action checks."""
import numpy as np
import pytest

from srljax.envs.hide_and_seek import make_vec_env
from srljax.envs.hide_and_seek.layout import (AGENT_R, FLOOR, QUAD_ROOM, RAMP_HALF, box_half,
                                              draw_layout)
from srljax.envs.spaces import MultiDiscrete


def footprints(layout):
    """Axis-aligned half extents (cx, cy, hx, hy) of every object of a layout."""
    out = [(p[0], p[1], AGENT_R, AGENT_R) for p in layout.agent_pos]
    out += [(p[0], p[1], *box_half(lg, y)[:2]) for p, y, lg in
            zip(layout.box_pos, layout.box_yaw, layout.box_long)]
    out += [(p[0], p[1], RAMP_HALF[0], RAMP_HALF[1]) for p in layout.ramp_pos]
    return np.array(out)


def overlaps(a, b):
    return (np.abs(a[:, None, 0] - b[None, :, 0]) < a[:, None, 2] + b[None, :, 2]) & \
           (np.abs(a[:, None, 1] - b[None, :, 1]) < a[:, None, 3] + b[None, :, 3])


def check_valid(layout):
    fp = footprints(layout)
    walls = layout.walls[:, [0, 1, 2, 3]]
    assert not overlaps(fp, walls).any(), "object inside a wall"
    pair = overlaps(fp, fp)
    np.fill_diagonal(pair, False)
    assert not pair.any(), "objects overlap"
    assert (fp[:, 0] - fp[:, 2] >= 0).all() and (fp[:, 0] + fp[:, 2] <= FLOOR).all()
    assert (fp[:, 1] - fp[:, 3] >= 0).all() and (fp[:, 1] + fp[:, 3] <= FLOOR).all()


def test_full_game_layouts_are_valid():
    rng = np.random.default_rng(0)
    rooms, hiders, seekers, boxes = set(), set(), set(), set()
    for _ in range(1000):
        lay = draw_layout("full", rng)
        check_valid(lay)
        assert 1 <= lay.rooms <= 4
        assert len(lay.walls) == (lay.rooms - 1) * 2 + (4 if (lay.walls[:, 5] == 1).any() else 0)
        n_h, n_s = int(lay.hider.sum()), int((~lay.hider).sum())
        assert 1 <= n_h <= 3 and 1 <= n_s <= 3
        assert 3 <= len(lay.box_pos) <= 9 and lay.box_long.sum() >= 3
        assert len(lay.ramp_pos) == 2
        for team in (lay.hider, ~lay.hider):       # teammates within 0.5 m of the first one
            pos = lay.agent_pos[team, :2]
            assert (np.linalg.norm(pos - pos[0], axis=1) <= 0.5 + 1e-9).all()
        rooms.add(lay.rooms), hiders.add(n_h), seekers.add(n_s), boxes.add(len(lay.box_pos))
    assert rooms == {1, 2, 3, 4} and hiders == seekers == {1, 2, 3} and boxes == set(range(3, 10))


def test_quadrant_layouts_are_valid():
    rng = np.random.default_rng(1)
    x0, y0, x1, y1 = QUAD_ROOM
    doors = set()
    for _ in range(300):
        lay = draw_layout("quadrant", rng)
        check_valid(lay)
        assert lay.hider.tolist() == [True, True, False, False]
        assert len(lay.box_pos) == 2 and not lay.box_long.any() and len(lay.ramp_pos) == 1
        bx, by = lay.box_pos[:, 0], lay.box_pos[:, 1]
        assert ((bx > x0) & (bx < x1) & (by > y0) & (by < y1)).all(), "cubes start in the room"
        sx, sy = lay.agent_pos[2:, 0], lay.agent_pos[2:, 1]
        assert not ((sx > x0) & (sx < x1) & (sy > y0) & (sy < y1)).any(), "seekers start outside"
        doors.add(len(lay.walls) - 4)     # 4 segments: two doors; 3: one wall without a door
    assert doors == {3, 4}


@pytest.mark.parametrize("variant,agents,boxes,ramps", [("quadrant", 4, 2, 1), ("full", 6, 9, 2)])
def test_interface_shapes_and_spaces(variant, agents, boxes, ramps):
    env = make_vec_env(variant, num_envs=3, seed=0)
    assert env.num_agents == agents and env.num_envs == 3
    assert env.action_space == MultiDiscrete((11, 11, 11, 2, 2))
    obs = env.reset(0)
    assert set(obs) == set(env.observation_space)
    for k, space in env.observation_space.items():
        assert obs[k].shape == (3, agents) + space.shape, k
        assert obs[k].dtype == np.float32, k
    assert obs["boxes"].shape[2] == boxes and obs["ramps"].shape[2] == ramps
    assert env.hider.shape == (3, agents)
    acts = np.random.default_rng(0).integers(0, 11, size=(3, agents, 5)) % [11, 11, 11, 2, 2]
    obs, rew, term, trunc, info = env.step(acts)
    assert rew.shape == (3, agents) and term.shape == trunc.shape == (3,)
    assert not term.any() and not trunc.any() and info["episodes"] == []


def test_full_game_pads_absent_agents():
    env = make_vec_env("full", num_envs=8, seed=3)
    obs = env.reset(3)
    exists = obs["agent_exists"].astype(bool)
    assert (~exists).any(), "some env has fewer than 6 agents"
    assert (exists.sum(1) >= 2).all()
    assert (obs["self"][~exists] == 0).all() and (obs["lidar"][~exists] == 0).all()
    rng = np.random.default_rng(0)
    for _ in range(3):
        acts = rng.integers(0, [11, 11, 11, 2, 2], size=(8, 6, 5))
        obs, rew, *_ = env.step(acts)
    assert (rew[~exists] == 0).all()
    # the critic's mask marks the absent ones, the team flag matches the obs
    assert (obs["agents_exists"].sum(-1)[exists] == exists.sum(1).repeat(exists.sum(1)) - 1).all()
    assert (obs["self"][..., 9].astype(bool) == (env.hider & exists)).all()


def test_truncation_auto_reset_and_episode_statistics():
    env = make_vec_env("quadrant", num_envs=2, seed=5, horizon=6)
    assert env.prep_steps == 2
    env.reset(5)
    rng = np.random.default_rng(5)
    for t in range(6):
        obs, rew, term, trunc, info = env.step(rng.integers(0, [11, 11, 11, 2, 2], size=(2, 4, 5)))
        assert not term.any()
        if t < 2:
            assert (rew == 0).all()
    assert trunc.all() and len(info["episodes"]) == 2
    ep = info["episodes"][0]
    for key in ("return", "length", "hider_return", "seeker_return", "max_box_move_prep",
                "max_box_move", "max_ramp_move_prep", "max_ramp_move", "num_box_lock_prep",
                "num_box_lock", "num_ramp_lock_prep", "num_ramp_lock", "hider_seen_frac"):
        assert key in ep, key
    assert ep["length"] == 6 and 0.0 <= ep["hider_seen_frac"] <= 1.0
    assert ep["hider_return"] == pytest.approx(-ep["seeker_return"])
    final = info["final_obs"]
    assert (final["self"][..., 10] == 1).all() and (obs["self"][..., 10] == 0).all()
    assert not np.array_equal(final["self"], obs["self"])
    assert (env.t == 0).all()


def rollout(seed, steps=12, variant="quadrant"):
    env = make_vec_env(variant, num_envs=2, seed=seed)
    obs = [env.reset(seed)]
    rng = np.random.default_rng(0)
    n = env.num_agents
    for _ in range(steps):
        obs.append(env.step(rng.integers(0, [11, 11, 11, 2, 2], size=(2, n, 5)))[0])
    return obs


@pytest.mark.parametrize("variant", ["quadrant", "full"])
def test_same_seed_same_observations(variant):
    a, b, c = rollout(7, variant=variant), rollout(7, variant=variant), rollout(8, variant=variant)
    for oa, ob in zip(a, b):
        for k in oa:
            np.testing.assert_array_equal(oa[k], ob[k])
    assert not np.array_equal(a[-1]["self"], c[-1]["self"])


@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 4, 4), int), "shape"),
    (np.full((2, 4, 5), 11), "outside"),
    (np.full((2, 4, 5), -1), "outside"),
    (np.full((2, 4, 5), np.nan), "NaN"),
    (np.full((2, 4, 5), 1.5), "integer"),
    (np.full((2, 4, 5), "a"), "integer"),
])
def test_bad_actions_raise_value_error(bad, match):
    env = make_vec_env("quadrant", num_envs=2)
    env.reset(0)
    with pytest.raises(ValueError, match=match):
        env.step(bad)
    ok = np.full((2, 4, 5), 1.0)                  # integral floats are accepted
    env.step(ok)


def test_unknown_variant():
    with pytest.raises(ValueError, match="variant"):
        make_vec_env("tiny")


def test_unstable_physics_ends_the_episode_flagged(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)             # MuJoCo writes MUJOCO_LOG.TXT into the working directory
    env = make_vec_env("quadrant", num_envs=2, seed=0)
    env.reset(0)
    still = np.tile([5, 5, 5, 0, 0], (2, 4, 1))
    env.step(still)
    env.datas[1].qvel[0] = np.inf           # MuJoCo warns and resets this MjData mid-step
    obs, rew, term, trunc, info = env.step(still)
    assert trunc.tolist() == [False, True] and not term.any()
    assert [ep["unstable"] for ep in info["episodes"]] == [True]
    assert env.t.tolist() == [2, 0]
    assert np.isfinite(obs["self"]).all()
