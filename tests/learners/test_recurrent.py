"""Multi-agent columns, recurrent chunks and value normalisation in the generic learner."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from srljax.learners import distributions
from srljax.learners.entity_net import make_entity_network
from srljax.learners.learner import Learner, LearnerSettings, RecurrentModel
from srljax.learners.normalizer import RunningStats
from srljax.learners.ppo import ppo_loss
from srljax.learners.recurrent import column_minibatches, merge_agents, to_chunks

NVEC = (3, 2)
T, B, A, L = 4, 2, 2, 2
GAMMA, LAMBDA, CLIP, VF, ENT, LR = 0.9, 0.8, 0.2, 0.5, 0.01, 0.1


def test_merge_agents_makes_one_column_per_env_and_agent():
    x = np.arange(T * B * A * 3).reshape(T, B, A, 3)
    batch = {"obs": {"f": x}, "reward": x[..., 0], "truncated": np.arange(T * B).reshape(T, B),
             "state": np.zeros((2, B, A, 5))}
    out, ids = merge_agents(batch, jnp.array([7, 9]))
    np.testing.assert_array_equal(out["obs"]["f"][:, 1 * A + 1], x[:, 1, 1])        # column b * A + a
    np.testing.assert_array_equal(out["truncated"][:, 1 * A + 0], batch["truncated"][:, 1])
    np.testing.assert_array_equal(out["truncated"][:, 1 * A + 1], batch["truncated"][:, 1])
    assert out["state"].shape == (2, B * A, 5)
    np.testing.assert_array_equal(ids, [14, 15, 18, 19])
    single = {"reward": np.zeros((T, B))}
    assert merge_agents(single)[0] is single


def test_chunks_and_column_minibatches_keep_whole_chunks():
    N = 3
    x = np.arange(T * N).reshape(T, N).astype(np.float32)            # value = t * N + n
    state = np.arange(2 * N).reshape(2, N, 1).astype(np.float32)
    c = to_chunks({"reward": x, "obs": x[..., None], "state": state}, L)
    assert c["reward"].shape == (L, 2 * N) and c["state"].shape == (1, 2 * N, 1)
    for k in range(2):
        for n in range(N):
            np.testing.assert_array_equal(c["reward"][:, k * N + n], x[k * L:(k + 1) * L, n])
            assert c["state"][0, k * N + n, 0] == state[k, n, 0]
    mbs = column_minibatches(c, jax.random.PRNGKey(0), 2)
    assert mbs["reward"].shape == (2, L, N)
    # every chunk appears once, intact, with its own state
    chunks = np.concatenate([np.asarray(mbs["reward"][m]).T for m in range(2)])
    states = np.concatenate([np.asarray(mbs["state"][m, 0, :, 0]) for m in range(2)])
    assert sorted(map(tuple, chunks)) == sorted(map(tuple, np.asarray(c["reward"]).T))
    for chunk, s in zip(chunks, states):
        k, n = divmod(int(chunk[0]) // N, L)[0], int(chunk[0]) % N
        assert s == state[k, n, 0]
    with pytest.raises(ValueError, match="chunks of 3"):
        to_chunks({"reward": x, "state": state}, 3)


def _obs(rng, lead):
    def mask(n):
        return (rng.random(lead + (n,)) < 0.6).astype(np.float32)
    return {"self": rng.normal(size=lead + (11,)).astype(np.float32),
            "agents": rng.normal(size=lead + (A - 1, 11)).astype(np.float32),
            "agents_visible": mask(A - 1), "agents_exists": np.ones(lead + (A - 1,), np.float32),
            "boxes": rng.normal(size=lead + (2, 15)).astype(np.float32), "boxes_visible": mask(2),
            "boxes_exists": np.ones(lead + (2,), np.float32),
            "lidar": rng.uniform(0, 6, size=lead + (30,)).astype(np.float32)}


def _consistent_final_obs(obs, fresh, ended):
    """final_obs as envs make it: obs[t + 1] where no episode ended at t, `fresh` (the observation
    before the auto-reset) where one did and at the last step."""
    def one(o, f):
        out = np.concatenate([o[1:], f[-1:]])
        e = ended.astype(bool).reshape(ended.shape + (1,) * (o.ndim - 2))
        return np.where(e, f, out).astype(np.float32)
    return jax.tree.map(one, obs, fresh)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    net = make_entity_network(NVEC, (4, 6), heads=2, lidar_channels=1)
    model = RecurrentModel(network=net, dist=distributions.MultiCategorical(NVEC), state_size=net.state_size)
    truncated = np.zeros((T, B), np.float32)
    truncated[1, 0] = 1.0
    first = np.zeros((T, B), np.float32)
    first[0] = 1.0
    first[2, 0] = 1.0                                # env 0 restarted after its truncation
    obs = _obs(rng, (T, B, A))
    batch = {"obs": obs, "final_obs": _consistent_final_obs(obs, _obs(rng, (T, B, A)), truncated),
             "action": rng.integers(0, NVEC, size=(T, B, A, 2)).astype(np.int32),
             "reward": rng.normal(size=(T, B, A)).astype(np.float32),
             "terminated": np.zeros((T, B), np.float32), "truncated": truncated,
             "logp": rng.uniform(-2.5, -1.0, size=(T, B, A)).astype(np.float32), "first": first,
             "state": rng.normal(size=(T // L, B, A, net.state_size)).astype(np.float32)}
    return model, batch


@pytest.fixture(scope="module")
def learner(problem):
    """The learner and its jitted init and update, compiled once for the module's tests."""
    settings = LearnerSettings(epochs=1, minibatches=1, gamma=GAMMA, gae_lambda=LAMBDA, normalize_adv=True,
                               normalize_value=True, chunk_len=L)
    made = Learner(problem[0], ppo_loss(CLIP, VF, ENT), optax.sgd(LR), settings)
    return made, jax.jit(made.init), jax.jit(made.update)


def _columns(model, batch):
    """The batch as per-agent columns [T, B * A, ...] (column b * A + a) for the direct computation."""
    N = B * A
    cols = lambda x: x.reshape((x.shape[0], N) + x.shape[3:])                     # noqa: E731
    per_env = lambda x: np.repeat(x, A, axis=1)                                    # noqa: E731
    return {"obs": jax.tree.map(cols, batch["obs"]), "final_obs": jax.tree.map(cols, batch["final_obs"]),
            "truncated": per_env(batch["truncated"]), "first": per_env(batch["first"]),
            "reward": cols(batch["reward"]), "logp": cols(batch["logp"]), "action": cols(batch["action"]),
            "state": batch["state"].reshape((T // L, N, -1))}


def _direct_targets(model, params, batch, value_stats, prior=None):
    """GAE, its standardised advantages and the standardised values and targets, written out.

    `value_stats` (mean, std): the running statistics before the update; the value head is read in
    return units with them, and targets and old values are standardised by the statistics that
    include this batch's targets (the first batch: exactly its own mean and std)."""
    net, c = model.network, _columns(model, batch)
    mean0, std0 = value_stats
    v = np.asarray(net.apply(params, c["obs"], method="value")) * std0 + mean0
    nv = np.asarray(net.apply(params, c["final_obs"], method="value")) * std0 + mean0
    adv = np.zeros((T, B * A), np.float32)
    last = np.zeros(B * A, np.float32)
    for t in reversed(range(T)):
        delta = c["reward"][t] + GAMMA * nv[t] - v[t]
        last = delta + GAMMA * LAMBDA * (1.0 - c["truncated"][t]) * last
        adv[t] = last
    target = adv + v
    adv = (adv - adv.mean()) / np.sqrt(adv.var() + 1e-8)
    if prior is None:
        mean1, std1 = target.mean(), np.sqrt(target.var() + 1e-8)
    else:                               # running statistics (count, mean, m2) merged with this batch's
        n0, m0, q0 = prior
        n1, m1, q1 = target.size, target.mean(), target.var() * target.size
        n = n0 + n1
        mean1 = m0 + (m1 - m0) * n1 / n
        std1 = np.sqrt((q0 + q1 + (m1 - m0) ** 2 * n0 * n1 / n) / n + 1e-8)
    return adv, (v - mean1) / std1, (target - mean1) / std1, target


@pytest.fixture(scope="module")
def direct_loss(problem):
    """PPO on the same data without the learner, a Python loop over steps (LSTM from each chunk's
    stored carry), as a jitted value-and-grad of (params, adv, v_n, target_n): compiled once."""
    model, batch = problem
    net, c = model.network, _columns(model, batch)

    def loss(p, adv, v_n, target_n):
        terms = []
        for k in range(T // L):
            carry = jnp.asarray(c["state"][k])
            for t in range(k * L, (k + 1) * L):
                o = jax.tree.map(lambda x: x[t:t + 1], c["obs"])
                logits, value, carry = net.apply(p, o, jnp.asarray(c["first"][t:t + 1]), carry)
                lp = model.dist.log_prob(logits[0], c["action"][t])
                ratio = jnp.exp(lp - c["logp"][t])
                pg = -jnp.minimum(ratio * adv[t], jnp.clip(ratio, 1 - CLIP, 1 + CLIP) * adv[t])
                vc = v_n[t] + jnp.clip(value[0] - v_n[t], -CLIP, CLIP)
                vl = 0.5 * jnp.maximum((value[0] - target_n[t]) ** 2, (vc - target_n[t]) ** 2)
                terms.append(pg + VF * vl - ENT * model.dist.entropy(logits[0]))
        return jnp.mean(jnp.stack(terms))

    return jax.jit(jax.value_and_grad(loss))


@pytest.mark.parametrize("prior", [None, (16.0, 0.3, 16.0 * 4.0)])
def test_recurrent_update_equals_direct_computation(problem, learner, direct_loss, prior):
    """One gradient step over chunks of per-agent columns (GAE over the whole rollout, LSTM from
    each chunk's stored carry, resets at episode starts, value targets standardised) equals the
    same step written out step by step. `prior`: value statistics (count, mean, m2) from earlier
    updates; without them (the first update) the critic reads as ~0 in return units (std 1e-4),
    so only the second case checks the bootstrap values of GAE (V(final_obs) at truncation)."""
    model, batch = problem
    learner, init, update = learner
    state = init(jax.random.PRNGKey(0), batch)
    if prior is not None:
        state = state.replace(value_norm=RunningStats(*(jnp.asarray(v, jnp.float32) for v in prior)))
    new_state, metrics = update(state, batch)
    vn0 = state.value_norm
    adv, v_n, target_n, target = _direct_targets(model, state.params, batch, (float(vn0.mean), float(vn0.std)),
                                                 prior)
    value, grads = direct_loss(state.params, adv, v_n, target_n)
    np.testing.assert_allclose(metrics["loss"], value, rtol=1e-4, atol=1e-5)
    want = jax.tree.map(lambda p, g: p - LR * g, state.params, grads)
    for got, exp in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(want)):
        np.testing.assert_allclose(got, exp, rtol=1e-4, atol=1e-6)
    vn = new_state.value_norm
    assert vn.count == T * B * A + (prior[0] if prior else 0)
    if prior is None:
        np.testing.assert_allclose(vn.mean, target.mean(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(vn.std, target.std(), rtol=1e-3)
    # acting reports values in return units and the next carry
    pol = learner.policy_params(new_state)
    obs0 = jax.tree.map(lambda x: x[0].reshape((B * A,) + x.shape[3:]), batch["obs"])
    _, _, v, s = jax.jit(learner.act_step)(pol, obs0, learner.initial_state(B * A), jnp.ones(B * A),
                                           jax.random.PRNGKey(1))
    head = model.network.apply(new_state.params, obs0, method="value")
    np.testing.assert_allclose(v, head * vn.std + vn.mean, rtol=1e-4, atol=1e-5)
    assert s.shape == (B * A, model.state_size)
    # acting without the critic (what policy workers do): same actions, log-probs and carry
    a1, lp1, v1, s1 = jax.jit(learner.act_step)(pol, obs0, s, jnp.zeros(B * A), jax.random.PRNGKey(2))
    a0, lp0, v0, s0 = jax.jit(lambda *xs: learner.act_step(*xs, value=False))(pol, obs0, s, jnp.zeros(B * A),
                                                                            jax.random.PRNGKey(2))
    np.testing.assert_array_equal(a0, a1)
    np.testing.assert_allclose(lp0, lp1, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(s0, s1, rtol=1e-5, atol=1e-6)
    assert v0.shape == v1.shape and not np.any(v0)


def test_packed_observations_and_requests_round_trip():
    """The dataflow's packing of dict observations (one row per agent) and recurrent requests."""
    from srljax.dataflow.roles.multiagent import (EpisodeStats, ObsPacker, PackedObsEnv, RequestCodec, episode_keys,
                                            episode_row)
    from srljax.envs.hide_and_seek import HideAndSeekVecEnv
    from srljax.envs.hide_and_seek import make_vec_env
    from srljax.envs.hide_and_seek.observations import observation_space
    space = observation_space(4, 2, 1)
    rng = np.random.default_rng(0)
    obs = {k: rng.normal(size=(3, 4) + s.shape).astype(np.float32) for k, s in space.items()}
    packer = ObsPacker(space)
    rows = packer.pack(obs, np.zeros((3, 4, packer.size), np.float32))
    back = packer.unpack(rows)
    for k in space:
        np.testing.assert_array_equal(back[k], obs[k])
    back_jax = packer.unpack(jnp.asarray(rows))
    np.testing.assert_array_equal(back_jax["boxes"], obs["boxes"])
    codec = RequestCodec(packer, 6)
    state = rng.normal(size=(3, 4, 6)).astype(np.float32)
    first = np.array([1.0, 0.0, 1.0], np.float32)
    req = np.zeros((3, 4, codec.width), np.float32)
    codec.pack(rows, state, first, req)
    o, s, f = codec.unpack(req)
    np.testing.assert_array_equal(o["lidar"], obs["lidar"].reshape(12, 30))
    np.testing.assert_array_equal(s, state.reshape(12, 6))
    np.testing.assert_array_equal(f, np.repeat(first, 4))
    env = PackedObsEnv(make_vec_env("quadrant", num_envs=2, seed=1))
    raw = make_vec_env("quadrant", num_envs=2, seed=1)
    np.testing.assert_array_equal(packer.unpack(env.reset(1))["boxes"], raw.reset(1)["boxes"])
    act = np.zeros((2, 4, 5), np.int64)
    packed, raw_out = env.step(act), raw.step(act)
    np.testing.assert_array_equal(packer.unpack(packed[4]["final_obs"])["lidar"], raw_out[4]["final_obs"]["lidar"])
    np.testing.assert_array_equal(packed[1], raw_out[1])
    env.close(), raw.close()
    # stage statistics: means per interval, unstable episodes left out
    stats = EpisodeStats(HideAndSeekVecEnv.episode_stats)
    keys = stats.keys
    eps = [{"return": 0.0, "length": 80, "hider_return": 10.0, "seeker_return": -10.0, "hider_seen_frac": 0.25},
           {"return": 0.0, "length": 80, "hider_return": -20.0, "seeker_return": 20.0, "hider_seen_frac": 0.75},
           {"return": 0.0, "length": 3, "hider_return": 99.0, "hider_seen_frac": 1.0, "unstable": True}]
    stats.add(np.array([episode_row(ep, keys) for ep in eps], np.float32))
    out = stats.flush()
    assert out["hider_return"] == pytest.approx(-5.0) and out["seeker_return"] == pytest.approx(5.0)
    assert out["stage/hider_seen_frac"] == pytest.approx(0.5) and out["stage/max_box_move_prep"] == 0.0
    assert stats.flush()["stage/hider_seen_frac"] is None
    assert episode_keys({}) == ("return", "length")
    assert keys[:4] == ("return", "length", "hider_return", "seeker_return") and keys[-1] == "unstable"


def test_learn_field_weights_out_scripted_agents(problem, learner):
    """The dataflow's `learn` [T, B, A] (0 where a scripted opponent acted) reaches the loss: all
    ones changes nothing; zeros for one agent slot change the update; and with that slot's
    actions replaced by garbage the update is the same as before (they carry no weight)."""
    model, batch = problem
    _, init, update = learner
    state = init(jax.random.PRNGKey(0), batch)
    leaves = lambda s: jax.tree.leaves(s.params)                               # noqa: E731
    base = leaves(update(state, batch)[0])
    ones = {**batch, "learn": jnp.ones(batch["reward"].shape, jnp.float32)}
    for a, b in zip(base, leaves(update(state, ones)[0])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    off = {**batch, "learn": jnp.ones(batch["reward"].shape, jnp.float32).at[:, :, 1].set(0.0)}
    masked = leaves(update(state, off)[0])
    assert any(not np.allclose(a, b) for a, b in zip(base, masked))
    garbage = {**off, "action": jnp.asarray(batch["action"]).at[:, :, 1].set(0),
               "logp": jnp.asarray(batch["logp"]).at[:, :, 1].set(-9.0)}
    for a, b in zip(masked, leaves(update(state, garbage)[0])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ended_at", [[(1, 0)], [(t, b) for t in range(T - 1) for b in range(B)]])
def test_values_pass_the_critic_over_bootstrap_rows_only_as_if_over_all(problem, ended_at):
    """`RecurrentModel.values` runs the critic over final_obs only where an episode ended and at the
    last step (few rows: the gathered path; most rows: one full pass); either way it equals the
    critic over every row of obs and final_obs."""
    model, batch = problem
    rng = np.random.default_rng(1)
    N = B * A
    ended = np.zeros((T, B), np.float32)
    for t, b in ended_at:
        ended[t, b] = 1.0
    cols = lambda x: x.reshape((x.shape[0], N) + x.shape[3:])                     # noqa: E731
    obs = jax.tree.map(cols, batch["obs"])
    fresh = jax.tree.map(cols, _obs(rng, (T, B, A)))
    merged = {"obs": obs, "final_obs": _consistent_final_obs(obs, fresh, np.repeat(ended, A, axis=1)),
              "reward": np.zeros((T, N), np.float32), "terminated": np.zeros((T, N), np.float32),
              "truncated": np.repeat(ended, A, axis=1)}
    params = model.init(jax.random.PRNGKey(3), jax.tree.map(lambda x: x[0], obs))
    v, nv = jax.jit(model.values)(params, merged)
    want_v = model.network.apply(params, merged["obs"], method="value")
    want_nv = model.network.apply(params, merged["final_obs"], method="value")
    np.testing.assert_allclose(v, want_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nv, want_nv, rtol=1e-5, atol=1e-6)
