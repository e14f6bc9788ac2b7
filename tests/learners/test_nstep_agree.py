"""The two n-step definitions agree: fused mode's (jax, `learners.replay.n_step_window` over the
loop's sliding window, `fused.replay.FusedReplayTrainer._transition`) and the buffer workers' (numpy,
`dataflow.replay_store.n_step_transitions` over a posted rollout) give the same transitions
(returns, discounts, next observations) on random sequences with terminations and truncations."""
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from srljax.dataflow.fused.replay import FusedReplayTrainer
from srljax.dataflow.replay.store import n_step_transitions

T, B, OBS = 40, 6, 3


def random_rollout(rng):
    """A posted [T, B] rollout: final_obs differs from the next obs after an episode end (a reset)."""
    obs = rng.normal(size=(T, B, OBS)).astype(np.float32)
    final = np.concatenate([obs[1:], rng.normal(size=(1, B, OBS)).astype(np.float32)])
    terminated = (rng.random((T, B)) < 0.15).astype(np.float32)
    truncated = (rng.random((T, B)) < 0.1).astype(np.float32)       # some steps both: termination wins
    ended = np.maximum(terminated, truncated) > 0
    final[ended] = rng.normal(size=(int(ended.sum()), OBS)).astype(np.float32) + 10.0
    return {"obs": obs, "action": rng.integers(0, 4, (T, B)).astype(np.int32),
            "reward": rng.normal(size=(T, B)).astype(np.float32), "terminated": terminated,
            "truncated": truncated, "final_obs": final}


def fused_transitions(data, n: int, gamma: float):
    """The transition fused mode stores for each step t: the window of steps t..t+n-1 as the loop
    holds it. Past the rollout's end the window is padded, with its last real step marked truncated
    (the rollout ends there: a posted rollout's windows are cut at its end, bootstrapping from its
    final observation); a window that lies inside the rollout is unchanged by that mark."""
    data = {k: np.asarray(v) for k, v in data.items()}
    data["truncated"] = data["truncated"].copy()
    data["truncated"][-1] = 1.0
    padded = {k: np.concatenate([v, np.zeros((n - 1,) + v.shape[1:], v.dtype)]) for k, v in data.items()}
    windows = {k: np.stack([v[t:t + n] for t in range(T)]) for k, v in padded.items()}     # [T, n, B, ...]
    loop = SimpleNamespace(rs=SimpleNamespace(gamma=gamma), local_envs=B)
    out = jax.jit(jax.vmap(lambda w: FusedReplayTrainer._transition(loop, w)))(jax.tree.map(jnp.asarray, windows))
    return {k: np.asarray(v).reshape((T * B,) + np.shape(v)[2:]) for k, v in out.items()}


@pytest.mark.parametrize("n", [1, 3, 5])
def test_jax_and_numpy_n_step_transitions_agree(n):
    rng = np.random.default_rng(n)
    gamma = 0.97
    for _ in range(3):
        data = random_rollout(rng)
        want = n_step_transitions(data, n, gamma)
        got = fused_transitions(data, n, gamma)
        for key in ("obs", "action", "next_obs"):
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{key}, n={n}")
        for key in ("reward", "discount"):
            np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6, err_msg=f"{key}, n={n}")
        # the sequences exercise what the definitions must agree on
        assert np.any(want["discount"] == 0.0), "no termination inside a window"
        ended_early = want["discount"] > gamma ** n + 1e-6            # gamma^m, m < n
        assert n == 1 or np.any(ended_early), "no truncation or rollout end cut a window short"


def test_a_wrong_n_step_definition_is_caught(monkeypatch):
    """The comparison can fail: a jax window that ignores truncations differs from the buffer workers'."""
    from srljax.learners import replay

    right = replay.n_step_window
    monkeypatch.setattr(replay, "n_step_window", lambda r, term, trunc, g: right(r, term, jnp.zeros_like(trunc), g))
    data = random_rollout(np.random.default_rng(7))
    want, got = n_step_transitions(data, 3, 0.97), fused_transitions(data, 3, 0.97)
    assert not np.allclose(got["reward"], want["reward"]) and not np.array_equal(got["next_obs"], want["next_obs"])
