"""The hide-and-seek entity network: masks, permutation invariance, LSTM resets, shared weights."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srljax.envs.hide_and_seek import make_vec_env
from srljax.learners.entity_net import circular_pad, make_entity_network, masked_mean

NVEC = (11, 11, 11, 2, 2)


@pytest.fixture(scope="module")
def setup():
    """A tiny network, real quadrant observations of 2 envs (8 agent columns) over 6 steps."""
    env = make_vec_env("quadrant", num_envs=2, seed=3)
    rng = np.random.default_rng(0)
    steps = [env.reset(3)]
    for _ in range(5):
        steps.append(env.step(rng.integers(0, NVEC, size=(2, env.num_agents, 5)))[0])
    env.close()
    obs = jax.tree.map(lambda *x: np.stack(x).reshape((6, 8) + x[0].shape[2:]), *steps)   # [T, N, ...]
    # random feature values make differences visible; masks stay 0/1
    for k in ("self", "agents", "boxes", "ramps", "lidar"):
        obs[k] = rng.normal(size=obs[k].shape).astype(np.float32)
    net = make_entity_network(NVEC, (8, 8), heads=2, lidar_channels=2)
    params = net.init(jax.random.PRNGKey(0), obs, jnp.ones((6, 8)), jnp.zeros((8, net.state_size)))
    apply = jax.jit(lambda o, f, s: net.apply(params, o, f, s))
    return net, params, obs, apply


def _zeros_state(net, n=8):
    return jnp.zeros((n, net.state_size))


def test_helpers():
    x = jnp.arange(5.0)[:, None]
    np.testing.assert_array_equal(circular_pad(x, 1)[:, 0], [4, 0, 1, 2, 3, 4, 0])
    v = jnp.array([[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]])
    np.testing.assert_allclose(masked_mean(v, jnp.array([1.0, 1.0, 0.0])), [2.0, 3.0])
    np.testing.assert_allclose(masked_mean(v, jnp.zeros(3)), [0.0, 0.0])


def test_masked_entities_do_not_change_the_policy(setup):
    net, params, obs, apply = setup
    first = jnp.ones((6, 8))
    obs = dict(obs)
    obs["boxes_visible"] = obs["boxes_visible"].copy()
    obs["boxes_visible"][..., 1] = 0.0        # box 1: exists but nobody sees it
    obs["boxes_exists"] = np.ones_like(obs["boxes_exists"])
    logits, value, _ = apply(obs, first, _zeros_state(net))
    changed = dict(obs, boxes=obs["boxes"].copy())
    changed["boxes"][..., 1, :] += 50.0
    logits2, value2, _ = apply(changed, first, _zeros_state(net))
    np.testing.assert_allclose(logits2, logits, atol=1e-5)
    assert np.abs(np.asarray(value2 - value)).max() > 1e-3    # the omniscient critic sees it
    # a visible entity does change the policy
    seen = dict(obs, boxes_visible=np.ones_like(obs["boxes_visible"]))
    l_seen, _, _ = apply(seen, first, _zeros_state(net))
    l_seen2, _, _ = apply(dict(changed, boxes_visible=seen["boxes_visible"]), first, _zeros_state(net))
    assert np.abs(np.asarray(l_seen2 - l_seen)).max() > 1e-4
    # an entity that does not exist does not change the critic either
    gone = dict(obs, boxes_exists=obs["boxes_exists"].copy())
    gone["boxes_exists"][..., 1] = 0.0
    _, v_gone, _ = apply(gone, first, _zeros_state(net))
    _, v_gone2, _ = apply(dict(changed, boxes_exists=gone["boxes_exists"]), first, _zeros_state(net))
    np.testing.assert_allclose(v_gone2, v_gone, atol=1e-5)


def test_permutation_invariance_over_entities(setup):
    net, params, obs, apply = setup
    obs = dict(obs, agents_visible=np.ones_like(obs["agents_visible"]),
               boxes_visible=np.ones_like(obs["boxes_visible"]))
    first = jnp.ones((6, 8))
    logits, value, state = apply(obs, first, _zeros_state(net))
    perm = dict(obs)
    for k in ("agents", "agents_visible", "agents_exists"):
        perm[k] = obs[k][:, :, [2, 0, 1]]
    for k in ("boxes", "boxes_visible", "boxes_exists"):
        perm[k] = obs[k][:, :, [1, 0]]
    logits2, value2, state2 = apply(perm, first, _zeros_state(net))
    np.testing.assert_allclose(logits2, logits, atol=1e-5)
    np.testing.assert_allclose(value2, value, atol=1e-5)
    np.testing.assert_allclose(state2, state, atol=1e-5)


def test_lstm_carry_resets_at_episode_starts(setup):
    net, params, obs, apply = setup
    state0 = jax.random.normal(jax.random.PRNGKey(1), (8, net.state_size))
    no_reset = jnp.zeros((6, 8))
    logits_carry, _, _ = apply(obs, no_reset, state0)
    logits_fresh, _, _ = apply(obs, no_reset, _zeros_state(net))
    assert np.abs(np.asarray(logits_carry - logits_fresh)).max() > 1e-4   # the carry matters
    # a reset at step 3 in columns 0..3: from step 3 on those columns forget everything before
    first = jnp.zeros((6, 8)).at[3, :4].set(1.0)
    logits, _, final = apply(obs, first, state0)
    tail = jax.tree.map(lambda x: x[3:], obs)
    logits_tail, _, final_tail = apply(tail, jnp.zeros((3, 8)), _zeros_state(net))
    np.testing.assert_allclose(logits[3:, :4], logits_tail[:, :4], atol=1e-5)
    np.testing.assert_allclose(final[:4], final_tail[:4], atol=1e-5)
    assert np.abs(np.asarray(logits[3:, 4:] - logits_tail[:, 4:])).max() > 1e-4   # the others remember
    # one step at a time gives the same as the sequence
    s = state0
    for t in range(6):
        step_logits, _, s = apply(jax.tree.map(lambda x: x[t:t + 1], obs), first[t:t + 1], s)
        np.testing.assert_allclose(step_logits[0], logits[t], atol=1e-5)
    np.testing.assert_allclose(s, final, atol=1e-5)


def test_one_set_of_weights_for_both_teams(setup):
    net, params, obs, apply = setup
    first = jnp.ones((6, 8))
    logits, value, _ = apply(obs, first, _zeros_state(net))
    # columns 0 and 2 are a hider and a seeker of env 0: swap their whole observations
    swap = jax.tree.map(lambda x: x[:, [2, 1, 0, 3, 4, 5, 6, 7]], obs)
    logits2, value2, _ = apply(swap, first, _zeros_state(net))
    np.testing.assert_allclose(logits2[:, 0], logits[:, 2], atol=1e-5)
    np.testing.assert_allclose(value2[:, 2], value[:, 0], atol=1e-5)
    # no parameter is specific to a team or an agent slot
    names = {"/".join(str(p.key) for p in path) for path, _ in jax.tree_util.tree_leaves_with_path(params)}
    assert not any("hider" in n or "seeker" in n or "agent_" in n for n in names)


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="embed, hidden"):
        make_entity_network(NVEC, (64,))
    with pytest.raises(ValueError, match="heads"):
        make_entity_network(NVEC, (10, 16), heads=4)
