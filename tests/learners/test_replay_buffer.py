"""The device-resident replay buffer: wrap-around, uniform coverage, prioritized sampling."""
import jax
import jax.numpy as jnp
import numpy as np

from srljax.learners import replay


def _example():
    return {"obs": jnp.zeros((3,)), "action": jnp.zeros((), jnp.int32)}


def _batch(start, T, B):
    ids = start + np.arange(T * B).reshape(T, B)
    return {"obs": jnp.asarray(np.repeat(ids[..., None], 3, -1), jnp.float32), "action": jnp.asarray(ids, jnp.int32)}


def test_add_wraps_around_and_keeps_the_newest():
    buf = replay.init(_example(), 10)
    add = jax.jit(replay.add)
    buf = add(buf, _batch(0, 2, 3))                       # 6 transitions
    assert int(buf.size) == 6 and int(buf.index) == 6
    buf = add(buf, _batch(6, 2, 3))                       # 12 in all: the first two overwritten
    assert int(buf.size) == 10 and int(buf.index) == 2
    assert sorted(np.asarray(buf.data["action"]).tolist()) == list(range(2, 12))
    assert np.asarray(buf.data["action"])[:2].tolist() == [10, 11]
    np.testing.assert_array_equal(np.asarray(buf.data["obs"])[:, 0], np.asarray(buf.data["action"]))


def test_uniform_sampling_covers_the_filled_slots_evenly():
    buf = replay.add(replay.init(_example(), 50), _batch(0, 4, 5))     # 20 of 50 filled
    idx, batch = jax.jit(replay.sample_uniform, static_argnums=2)(buf, jax.random.PRNGKey(0), 20_000)
    idx = np.asarray(idx)
    assert idx.min() == 0 and idx.max() == 19
    counts = np.bincount(idx, minlength=20)
    assert np.all(np.abs(counts / 20_000 - 1 / 20) < 0.01), counts
    np.testing.assert_array_equal(np.asarray(batch["action"]), idx)


def test_prioritized_sampling_is_proportional_with_correct_weights():
    buf = replay.add(replay.init(_example(), 8), _batch(0, 1, 6))      # 6 of 8 filled
    priority = jnp.array([1.0, 2.0, 3.0, 4.0, 0.5, 9.5])
    buf = replay.update_priorities(buf, jnp.arange(6), priority)
    alpha, beta, n = 0.7, 0.5, 40_000
    idx, batch, weight = replay.sample_prioritized(buf, jax.random.PRNGKey(1), n, alpha, beta)
    idx, weight = np.asarray(idx), np.asarray(weight)
    want = np.asarray(priority) ** alpha / np.sum(np.asarray(priority) ** alpha)
    freq = np.bincount(idx, minlength=8) / n
    assert freq[6:].sum() == 0                             # empty slots are never drawn
    np.testing.assert_allclose(freq[:6], want, atol=4 * np.sqrt(want * (1 - want) / n).max())
    w = (6 * want) ** -beta
    np.testing.assert_allclose(weight, (w / w[idx].max())[idx], rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(batch["action"]), idx)
    assert float(buf.max_priority) == 9.5


def test_new_transitions_get_the_largest_priority():
    buf = replay.add(replay.init(_example(), 8), _batch(0, 1, 2))
    buf = replay.update_priorities(buf, jnp.array([0, 1]), jnp.array([0.1, 5.0]))
    buf = replay.add(buf, _batch(2, 1, 2))
    np.testing.assert_allclose(np.asarray(buf.priority)[:4], [0.1, 5.0, 5.0, 5.0])
