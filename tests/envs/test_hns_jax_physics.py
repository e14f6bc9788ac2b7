"""Physics checks of the JAX game (`hns_jax`): no tunnelling, shallow wall contacts, pushing, ramps.

The same hand-built scenes run on the MuJoCo game where a comparison says more than a bound."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srljax.envs.hide_and_seek import Agent, Box, Ramp, Scenario, Wall, act
from srljax.envs.hns_jax import HideAndSeekJax
from srljax.envs.hns_jax import physics as P
from srljax.envs.hns_jax.geometry import disc_rect, rect_rect
from srljax.envs.hns_jax.scenario import JaxScenario


def wall_penetration(g):
    """Deepest overlap [B] of an agent (below a wall's top) or an object with a wall."""
    w, b = g.world, g.bodies
    A = g.hider.shape[-1]

    def one(w, b):
        signed, _, _ = disc_rect(b.p[:A, None], w.wall_c[None], w.wall_h[None])
        blocks = w.wall_on[None] & (w.wall_top[None] > b.base[:, None] + P.STEP) & w.agent_on[:, None]
        agent = jnp.max(jnp.where(blocks, P.AGENT_R - signed, 0.0))
        c, s = jnp.cos(b.yaw[A:]), jnp.sin(b.yaw[A:])
        W = w.wall_c.shape[0]
        depth, _, _ = rect_rect(b.p[A:, None], w.half[:, None], c[:, None], s[:, None], w.wall_c[None],
                                w.wall_h[None], jnp.ones((1, W)), jnp.zeros((1, W)))
        obj = jnp.max(jnp.where(w.wall_on[None] & w.obj_on[:, None], depth, 0.0))
        return jnp.maximum(agent, obj)
    return jax.vmap(one)(w, b)


@pytest.mark.parametrize("variant", ["quadrant", "full"])
def test_random_play_at_full_force_stays_out_of_the_walls(variant):
    """256 games of random actions whose movement is always a full-force bin (0 or 10: the fastest
    bodies there are), one horizon each: walls hold about as well as the MuJoCo game's under the same
    play (its deepest: 6.6 cm in the full game and 7.0 cm in the quadrant game over 64 games, with
    0.4-0.6% of body-steps past 5 cm; docs/hns_jax.md): the deepest under 8 cm, fewer than 0.1% of
    games' steps past 5 cm, and nothing leaves the outer walls' square."""
    env = HideAndSeekJax(variant, layouts=256, prep_steps=0)
    B, A = 256, env.num_agents

    def run(key):
        state = jax.vmap(env.reset)(jax.random.split(key, B))

        def step(state, k):
            k1, k2 = jax.random.split(k)
            move = jax.random.randint(k1, (B, A, 3), 0, 2) * 10
            bits = jax.random.randint(k2, (B, A, 2), 0, 2)
            state = jax.vmap(env.step)(state, jnp.concatenate([move, bits], -1))
            g = state.inner
            outer = jnp.any(g.world.wall_top > 1.0, axis=-1)              # full game: outer walls may be absent
            p = g.bodies.p
            on = jnp.concatenate([g.world.agent_on, g.world.obj_on], -1)
            escaped = jnp.any(on & ((p < -0.1) | (p > 6.1)).any(-1), -1) & outer
            return state, (wall_penetration(g), escaped)
        _, (pen, escaped) = jax.lax.scan(step, state, jax.random.split(key, env.horizon))
        return pen.max(), jnp.mean(pen > 0.05), escaped.any()
    deepest, past_5cm, escaped = jax.jit(run)(jax.random.key(0))
    assert float(deepest) < 0.08
    assert float(past_5cm) < 0.001
    assert not bool(escaped)


@pytest.mark.parametrize("game", [Scenario, JaxScenario], ids=["mujoco", "jax"])
def test_nothing_tunnels_through_a_wall_at_the_largest_force(game):
    """Agents running at a wall head-on and at 30 and 60 degrees, a cube and an elongated box (thin
    side first) driven into it at top speed, for 2 s: everything stays on its side."""
    wall = [Wall((3, 0.0), (3, 6.0))]
    for yaw in (0.0, math.radians(30), math.radians(60)):
        sc = game(agents=[Agent((1.0, 3.0), yaw=yaw)], walls=wall)
        dx, dy = round(5 * math.cos(yaw)), round(5 * math.sin(yaw))
        sc.step([act(x=dx, y=dy)], n=27)
        assert sc.agent_pos(0)[0] < 3.0 - 0.05 - 0.15 + 0.03
    for box in (Box((2.0, 3.0)), Box((2.0, 3.0), yaw=0.0, long=True)):
        sc = game(agents=[Agent((1.0, 3.0) if not box.long else (1.0, 3.0))], boxes=[box], walls=wall)
        sc.step([act(x=5)], n=27)
        half = 0.825 if box.long else 0.25
        assert sc.box_pos(0)[0] < 3.0 - 0.05 - half + 0.03
        assert sc.agent_pos(0)[0] < sc.box_pos(0)[0]


@pytest.mark.parametrize("game", [Scenario, JaxScenario], ids=["mujoco", "jax"])
def test_two_agents_push_a_cube_farther_than_one(game):
    def pushed(n):
        agents = [Agent((1.3, 3.0))] if n == 1 else [Agent((1.3, 2.84)), Agent((1.3, 3.16))]
        sc = game(agents=agents, boxes=[Box((2.0, 3.0))])
        sc.step([act(x=5)] * n, n=6)
        return sc.box_pos(0)[0] - 2.0
    one, two = pushed(1), pushed(2)
    assert one > 1.0 and two > one + 0.2


@pytest.mark.parametrize("game", [Scenario, JaxScenario], ids=["mujoco", "jax"])
def test_an_agent_up_a_ramp_stands_at_half_a_metre_and_sees_over_an_interior_wall(game):
    """A ramp against the room's wall (high side at the wall) and a hider behind the wall: the
    seeker on the floor cannot see it; after running up the ramp it stands 0.5 m up (its centre at
    0.65) and sees the hider over the wall."""
    walls = [Wall((1, 2.5), (5, 2.5))]
    agents = [Agent((3.0, 4.0), yaw=-math.pi / 2, hider=False), Agent((3.0, 1.0), yaw=-math.pi / 2)]
    sc = game(agents=agents, ramps=[Ramp((3.0, 2.8))], walls=walls)
    assert not sc.visible(0, 1)
    heights, seen = [], []
    for _ in range(12):
        sc.step([act(y=-3), act()])
        heights.append(sc.agent_pos(0)[2])
        seen.append(sc.visible(0, 1))
    top = int(np.argmax(heights))
    assert heights[top] == pytest.approx(0.65, abs=0.03)
    assert any(seen[max(top - 1, 0): top + 2])
