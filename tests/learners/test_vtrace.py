"""V-trace against a plain-Python reference of IMPALA's recursion, jitted and not."""
import jax
import numpy as np
import pytest

from srljax.learners.vtrace import vtrace


def reference(value, next_value, reward, discount, cont, log_rho, lam, rho_clip, c_clip):
    T = len(reward)
    rho = np.exp(log_rho)
    vs = np.zeros_like(value)
    acc = np.zeros_like(value[0])
    for t in reversed(range(T)):
        delta = np.minimum(rho_clip, rho[t]) * (reward[t] + discount[t] * next_value[t] - value[t])
        acc = delta + discount[t] * cont[t] * lam * np.minimum(c_clip, rho[t]) * acc
        vs[t] = value[t] + acc
    adv = np.zeros_like(value)
    for t in range(T):
        nxt = np.where((t + 1 < T) & (cont[t] > 0), vs[min(t + 1, T - 1)], next_value[t])
        adv[t] = np.minimum(rho_clip, rho[t]) * (reward[t] + discount[t] * nxt - value[t])
    return vs, adv


@pytest.mark.parametrize("jit", [False, True])
def test_matches_reference(jit):
    rng = np.random.default_rng(0)
    T, B = 7, 3
    value = rng.normal(size=(T, B)).astype(np.float32)
    next_value = np.concatenate([value[1:], rng.normal(size=(1, B))]).astype(np.float32)
    terminated = (rng.random((T, B)) < 0.15).astype(np.float32)
    truncated = ((rng.random((T, B)) < 0.1) * (1 - terminated)).astype(np.float32)
    ended = np.maximum(terminated, truncated)
    next_value = np.where(ended > 0, rng.normal(size=(T, B)), next_value).astype(np.float32)
    reward = rng.normal(size=(T, B)).astype(np.float32)
    log_rho = rng.normal(scale=0.5, size=(T, B)).astype(np.float32)
    discount, cont = 0.9 * (1 - terminated), 1 - ended
    fn = jax.jit(vtrace) if jit else vtrace
    vs, adv = fn(value, next_value, reward, discount, cont, log_rho, 0.95, 1.0, 1.0, 1.0)
    ref_vs, ref_adv = reference(value, next_value, reward, discount, cont, log_rho, 0.95, 1.0, 1.0)
    np.testing.assert_allclose(vs, ref_vs, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)


def test_on_policy_with_lambda_one_gives_bootstrapped_returns():
    # rho = c = 1 and lambda = 1: vs_t is the discounted return bootstrapped from the last value.
    T = 5
    reward = np.arange(1, T + 1, dtype=np.float32)[:, None]
    value = np.zeros((T, 1), np.float32)
    next_value = np.zeros((T, 1), np.float32)
    next_value[-1] = 10.0
    ones = np.ones((T, 1), np.float32)
    vs, _ = jax.jit(vtrace)(value, next_value, reward, 0.5 * ones, ones, 0 * ones, 1.0)
    expected = [sum(0.5 ** (k - t) * reward[k, 0] for k in range(t, T)) + 0.5 ** (T - t) * 10.0 for t in range(T)]
    np.testing.assert_allclose(vs[:, 0], expected, rtol=1e-6)
