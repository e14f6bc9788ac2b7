"""`srljax.stats`: the IQM equals rliable's (`scipy.stats.trim_mean(x, 0.25)`, which rliable's
`aggregate_iqm` is), and the bootstrap interval is the percentile interval of resampled runs, close
to one of rliable's 50,000 resamples."""
import numpy as np
import pytest
from scipy import stats as sps

from srljax.stats import aggregate, bootstrap_ci, iqm


@pytest.mark.parametrize("n", [1, 3, 4, 5, 8, 16, 17])
def test_iqm_is_rliables_trimmed_mean(n):
    x = np.random.default_rng(n).normal(size=n) * 100
    assert iqm(x) == pytest.approx(sps.trim_mean(x, 0.25))
    batch = np.random.default_rng(n + 1).normal(size=(5, n))
    np.testing.assert_allclose(iqm(batch, axis=-1), sps.trim_mean(batch, 0.25, axis=-1))


def test_the_bootstrap_interval_is_the_percentile_interval_of_resampled_runs():
    x = np.random.default_rng(0).normal(loc=200, scale=50, size=16)
    rng = np.random.default_rng(7)
    # rliable's default count of resamples, drawn at once: the same 50,000 resamples (and IQMs) as
    # 50,000 draws of 16, without a Python loop over them
    many = sps.trim_mean(x[rng.integers(0, 16, (50_000, 16))], 0.25, axis=1)
    lo, hi = np.percentile(many, [2.5, 97.5])
    ours = bootstrap_ci(x, iqm)
    assert abs(ours[0] - lo) < 0.05 * (hi - lo) and abs(ours[1] - hi) < 0.05 * (hi - lo), (ours, lo, hi)
    mean_lo, mean_hi = bootstrap_ci(x, np.mean)
    se = x.std() / np.sqrt(16)              # the normal approximation, for scale
    assert mean_lo < x.mean() < mean_hi and 2.5 * se < mean_hi - mean_lo < 5 * se


def test_aggregate_leaves_out_members_without_a_return():
    out = aggregate([10.0, None, 30.0, 20.0])
    assert out["episode_return_members"] == [10.0, None, 30.0, 20.0]
    assert out["episode_return_mean"] == 20.0 and out["best_member"] == 2
    assert aggregate([None, None]) == {"episode_return_members": [None, None]}
