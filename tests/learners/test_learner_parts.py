"""GAE, distributions and the normaliser, each checked against a direct computation."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srljax.learners import distributions, normalizer
from srljax.learners.learner import gae


def gae_reference(r, disc, v, nv, lam, cont):
    T = len(r)
    adv = np.zeros_like(r)
    last = np.zeros_like(r[0])
    for t in reversed(range(T)):
        delta = r[t] + disc[t] * nv[t] - v[t]
        last = delta + disc[t] * lam * cont[t] * last
        adv[t] = last
    return adv


class GaeTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_matches_reference_with_terminal_and_truncation(self):
        rng = np.random.default_rng(0)
        T, B = 7, 3
        r = rng.normal(size=(T, B)).astype(np.float32)
        v = rng.normal(size=(T, B)).astype(np.float32)
        nv = rng.normal(size=(T, B)).astype(np.float32)
        term = np.zeros((T, B), np.float32); term[2, 0] = 1
        trunc = np.zeros((T, B), np.float32); trunc[4, 1] = 1
        disc = 0.99 * (1 - term)
        cont = 1 - np.maximum(term, trunc)
        adv, target = self.variant(gae)(r, disc, v, nv, 0.95, cont)
        want = gae_reference(r, disc, v, nv, 0.95, cont)
        np.testing.assert_allclose(adv, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(target, want + v, rtol=1e-5, atol=1e-5)
        # Truncation bootstraps: the advantage at the truncated step uses next_value.
        np.testing.assert_allclose(adv[4, 1], r[4, 1] + 0.99 * nv[4, 1] - v[4, 1], rtol=1e-5)
        # Termination does not.
        np.testing.assert_allclose(adv[2, 0], r[2, 0] - v[2, 0], rtol=1e-5)

    def test_rejects_mismatched_shapes(self):
        with pytest.raises(AssertionError):
            gae(jnp.zeros((3, 2)), jnp.zeros((3, 2)), jnp.zeros((3, 2)), jnp.zeros((3,)), 0.9, jnp.zeros((3, 2)))


def test_categorical_logp_and_entropy():
    d = distributions.Categorical(3)
    logits = jnp.array([[0.0, 1.0, 2.0]])
    p = np.exp([0, 1, 2]) / np.exp([0, 1, 2]).sum()
    np.testing.assert_allclose(d.log_prob(logits, jnp.array([2])), np.log(p[2])[None], rtol=1e-6)
    np.testing.assert_allclose(d.entropy(logits), [-(p * np.log(p)).sum()], rtol=1e-6)


def test_gaussian_logp_matches_formula():
    d = distributions.DiagGaussian(2)
    mean, log_std = jnp.array([0.5, -1.0]), jnp.array([0.1, -0.3])
    a = jnp.array([0.0, 0.0])
    std = np.exp(np.asarray(log_std))
    want = np.sum(-0.5 * ((np.asarray(a) - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi))
    np.testing.assert_allclose(d.log_prob((mean, log_std), a), want, rtol=1e-6)


def test_multicategorical_samples_in_range_and_logp_sums():
    d = distributions.MultiCategorical((11, 11, 11, 2, 2))
    logits = jax.random.normal(jax.random.PRNGKey(0), (5, d.out_size))
    a = d.sample(logits, jax.random.PRNGKey(1))
    assert a.shape == (5, 5)
    assert bool(jnp.all(a >= 0)) and bool(jnp.all(a < jnp.array([11, 11, 11, 2, 2])))
    parts = jnp.split(logits, [11, 22, 33, 35], axis=-1)
    want = sum(distributions.Categorical(n).log_prob(lg, a[:, i]) for i, (n, lg) in enumerate(zip(d.nvec, parts)))
    np.testing.assert_allclose(d.log_prob(logits, a), want, rtol=1e-6)


def test_normalizer_merges_batches_like_one_pass():
    rng = np.random.default_rng(0)
    x1 = rng.normal(2.0, 3.0, size=(50, 4)).astype(np.float32)
    x2 = rng.normal(-1.0, 0.5, size=(70, 4)).astype(np.float32)
    s = normalizer.RunningStats.create((4,))
    s = normalizer.update(normalizer.update(s, x1), x2)
    both = np.concatenate([x1, x2])
    np.testing.assert_allclose(s.mean, both.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.std, both.std(0), rtol=1e-4)
    assert float(s.count) == 120


@pytest.mark.parametrize("algo", ["ppo", "vtrace"])
def test_the_loss_leaves_out_absent_agent_slots(algo):
    """Weight 0 (an absent agent slot of the full hide-and-seek game, a killed SMAX unit, a random
    opponent) removes a sample from every term of the PPO and the V-trace loss: the weighted loss
    (weights as the learner scales them, to mean 1) equals the loss over the present samples alone."""
    import dataclasses
    from srljax.learners.ppo import ppo_loss
    from srljax.learners.vtrace import vtrace_loss

    @dataclasses.dataclass(frozen=True)
    class Fixed:                      # a "model" whose forward pass is its parameters
        dist: object

        def forward(self, params, mb):
            return params["logits"], params["value"]

    rng = np.random.default_rng(0)
    T, N = 5, 6
    present = np.array([1, 1, 0, 1, 0, 1], np.float32)
    mb = {"action": rng.integers(0, 3, (T, N)), "logp": rng.normal(size=(T, N)) - 1.0,
          "advantage": rng.normal(size=(T, N)), "target": rng.normal(size=(T, N)), "value": rng.normal(size=(T, N)),
          "weight": np.broadcast_to(present / present.mean(), (T, N))}
    params = {"logits": rng.normal(size=(T, N, 3)), "value": rng.normal(size=(T, N))}
    mb = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32) if x.dtype.kind == "f" else jnp.asarray(x), mb)
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    model = Fixed(distributions.Categorical(3))
    loss = ppo_loss(0.2, 0.5, 0.01) if algo == "ppo" else vtrace_loss(0.5, 0.01)
    keep = np.flatnonzero(present)
    sub = lambda x: x[:, keep]                                            # noqa: E731
    weighted, wm = loss(model, params, mb, None)
    alone, am = loss(model, jax.tree.map(sub, params), {k: sub(v) for k, v in mb.items() if k != "weight"}, None)
    np.testing.assert_allclose(weighted, alone, rtol=1e-5)
    for k in am:
        np.testing.assert_allclose(wm[k], am[k], rtol=1e-5, atol=1e-7)
    # and the absent samples' data cannot change it
    garbage = {**mb, "advantage": mb["advantage"].at[:, 2].set(1e3), "target": mb["target"].at[:, 4].set(-1e3)}
    np.testing.assert_allclose(loss(model, params, garbage, None)[0], weighted, rtol=1e-5)


def test_flat_parameter_vector_update_equals_the_tree_update():
    """`flat_params` (PPO's default: parameters and Adam's moments as one vector during the
    gradient steps) computes the same update as the per-array optimiser, and gives back the state
    in its tree layout."""
    from srljax import config as C
    from srljax import presets
    from srljax.envs import make
    from srljax.learners import registry

    cfg = C.override(presets.get("cartpole_purejaxrl"), {"env.num_envs": 3, "rollout.rollout_len": 8, "ppo.minibatches": 2})
    env = make(cfg.env.id, num_envs=3)
    rng = np.random.default_rng(0)
    T, N = 8, 3
    obs = rng.normal(size=(T, N, 4)).astype(np.float32)
    batch = {"obs": obs, "final_obs": obs + 0.1, "action": rng.integers(0, 2, (T, N)).astype(np.int32),
             "logp": np.full((T, N), -0.69, np.float32), "reward": np.ones((T, N), np.float32),
             "terminated": (rng.random((T, N)) < 0.1).astype(np.float32), "truncated": np.zeros((T, N), np.float32)}
    learners = []
    for flat in (False, True):
        learner = registry.for_config(cfg).build(cfg, env.observation_space, env.action_space)
        learner.flat_params = flat
        learners.append(learner)
    assert all(type(lr).__name__ == "Learner" for lr in learners)
    state0 = learners[0].init(jax.random.PRNGKey(1), jax.tree.map(lambda x: x[:1], batch))
    (tree_state, tree_m), (flat_state, flat_m) = [jax.jit(lr.update)(state0, batch) for lr in learners]
    assert jax.tree.structure(flat_state) == jax.tree.structure(tree_state)
    moved = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(tree_state.params),
                                                                jax.tree.leaves(state0.params)))
    assert moved > 1e-5                                    # the update did something
    for a, b in zip(jax.tree.leaves(flat_state), jax.tree.leaves(tree_state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(flat_m["loss"], tree_m["loss"], rtol=1e-5)
