"""Bootstrap intervals against scipy, the paired test and Holm's correction."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import stats

from judgealign.errors import ConfigError, DataError
from judgealign.evaluation.bootstrap import (
    ConfidenceInterval,
    bootstrap_ci,
    holm_correction,
    paired_bootstrap,
)


@pytest.fixture
def skewed() -> np.ndarray:
    # Skewed (exponential, sd ~1) so that BCa and percentile bounds differ visibly.
    return np.random.default_rng(42).exponential(1.0, size=50)


@pytest.mark.parametrize(("method", "scipy_method"), [("percentile", "percentile"), ("bca", "BCa")])
def test_matches_scipy_bootstrap(skewed: np.ndarray, method: str, scipy_method: str) -> None:
    ours = bootstrap_ci(skewed, n_resamples=10_000, method=method, seed=1, expand=False)  # type: ignore[arg-type]
    ref = stats.bootstrap(  # type: ignore[call-overload]
        (skewed,),
        np.mean,
        n_resamples=10_000,
        method=scipy_method,
        confidence_level=0.95,
        rng=np.random.default_rng(2),
    ).confidence_interval
    # Monte Carlo error of a 2.5% quantile with 10,000 resamples is ~0.005 here.
    assert ours.low == pytest.approx(ref.low, abs=0.02)
    assert ours.high == pytest.approx(ref.high, abs=0.02)
    assert ours.estimate == pytest.approx(skewed.mean())
    assert (ours.n, ours.n_resamples, ours.draw_size, ours.method) == (50, 10_000, 50, method)


def test_bca_shifts_upwards_on_right_skewed_data(skewed: np.ndarray) -> None:
    pct = bootstrap_ci(skewed, method="percentile", seed=3)
    bca = bootstrap_ci(skewed, method="bca", seed=3)
    assert bca.low > pct.low and bca.high > pct.high


def test_seed_determinism(skewed: np.ndarray) -> None:
    a = bootstrap_ci(skewed, method="bca", n_resamples=2000, seed=7)
    b = bootstrap_ci(skewed, method="bca", n_resamples=2000, seed=7)
    c = bootstrap_ci(skewed, method="bca", n_resamples=2000, seed=8)
    assert a == b
    assert (a.low, a.high) != (c.low, c.high)


def test_chunking_does_not_change_the_distribution(monkeypatch: pytest.MonkeyPatch) -> None:
    import judgealign.evaluation.bootstrap as bs

    x = np.random.default_rng(0).normal(size=500)
    big = bootstrap_ci(x, n_resamples=3000, seed=0, method="bca")
    monkeypatch.setattr(bs, "_CHUNK_ELEMENTS", 1000)  # forces many chunks in both loops
    small = bootstrap_ci(x, n_resamples=3000, seed=0, method="bca")
    assert small.low == pytest.approx(big.low, abs=0.02)
    assert small.high == pytest.approx(big.high, abs=0.02)


def test_callable_statistic_and_median() -> None:
    x = np.arange(20.0)
    ci = bootstrap_ci(x, statistic=lambda v, axis: np.percentile(v, 90, axis=axis), seed=0)
    assert ci.estimate == pytest.approx(np.percentile(x, 90))
    assert ci.low <= ci.estimate <= ci.high
    med = bootstrap_ci(x, statistic="median", method="bca", n_resamples=2000, seed=0)
    assert med.estimate == 9.5 and med.low < 9.5 < med.high


def test_draw_size_is_narrower_by_sqrt_ratio(skewed: np.ndarray) -> None:
    honest = bootstrap_ci(skewed, n_resamples=20_000, seed=0)
    study = bootstrap_ci(skewed, n_resamples=20_000, seed=0, draw_size=100)
    ratio = (study.high - study.low) / (honest.high - honest.low)
    assert ratio == pytest.approx(math.sqrt(50 / 100), abs=0.05)
    assert study.draw_size == 100 and study.n == 50
    with pytest.raises(ConfigError):
        bootstrap_ci(skewed, method="bca", draw_size=100)


def test_nan_dropped_and_tiny_samples() -> None:
    ci = bootstrap_ci([1.0, math.nan, 3.0], n_resamples=500, seed=0)
    assert ci.n == 2 and ci.estimate == 2.0
    one = bootstrap_ci([4.0], seed=0)
    assert one.estimate == 4.0 and math.isnan(one.low) and math.isnan(one.high)
    const = bootstrap_ci([2.0] * 10, method="bca", n_resamples=500, seed=0)
    assert (const.low, const.high) == (2.0, 2.0)


def test_invalid_options() -> None:
    with pytest.raises(ConfigError):
        bootstrap_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ConfigError):
        bootstrap_ci([1.0, 2.0], n_resamples=0)
    with pytest.raises(ConfigError):
        bootstrap_ci([1.0, 2.0], statistic="mode")  # type: ignore[arg-type]
    with pytest.raises(DataError):
        bootstrap_ci([[1.0, 2.0]])


def test_json_round_trip_keeps_nan() -> None:
    ci = bootstrap_ci([4.0], seed=0)
    back = ConfidenceInterval.model_validate_json(ci.model_dump_json())
    assert math.isnan(back.low) and back.estimate == 4.0


def test_paired_identical_inputs_give_p_one() -> None:
    e = np.random.default_rng(0).integers(0, 3, 40).astype(float)
    r = paired_bootstrap(e, e.copy(), n_resamples=2000, seed=0)
    assert r.p_value == 1.0
    assert r.delta == 0.0 and r.low == 0.0 and r.high == 0.0


def test_paired_large_improvement_is_significant() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(0.5, 1.5, 50)
    b = a - 0.5 + rng.normal(0, 0.05, 50)  # b consistently better (lower error)
    r = paired_bootstrap(a, b, n_resamples=10_000, seed=0, expand=False)
    assert r.delta < 0 and r.high < 0
    assert r.delta == pytest.approx(r.mean_b - r.mean_a)
    assert r.p_value == pytest.approx(1 / 10_001)
    # Expanded, the floor is the t-tail of the same normal score: still tiny.
    assert paired_bootstrap(a, b, n_resamples=10_000, seed=0).p_value < 1e-3
    flipped = paired_bootstrap(b, a, n_resamples=10_000, seed=0)
    assert flipped.delta > 0 and flipped.low > 0


def test_paired_null_is_not_significant_and_nan_dropped_jointly() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(1, 1, 60)
    b = a + rng.normal(0, 1, 60)
    a[3], b[7] = math.nan, math.nan
    r = paired_bootstrap(a, b, n_resamples=5000, seed=0)
    assert r.n == 58
    keep = ~np.isnan(a) & ~np.isnan(b)
    assert r.mean_a == pytest.approx(a[keep].mean())
    # The test and the interval agree: 0 inside the 95% interval <=> p > 0.05 (roughly).
    assert (r.low < 0 < r.high) == (r.p_value > 0.05)
    with pytest.raises(DataError):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_paired_p_value_matches_direct_shifted_test() -> None:
    rng = np.random.default_rng(9)
    d_a, d_b = rng.normal(1, 1, 30), rng.normal(1.3, 1, 30)
    r = paired_bootstrap(d_a, d_b, n_resamples=4000, seed=11, expand=False)
    # Re-derive with the same draws: shift differences to mean 0, resample, count.
    diff = d_b - d_a
    idx = np.random.default_rng(11).integers(0, 30, size=(4000, 30))
    null = (diff - diff.mean())[idx].mean(axis=1)
    expected = (np.count_nonzero(np.abs(null) >= abs(diff.mean()) - 1e-12) + 1) / 4001
    assert r.p_value == pytest.approx(expected)


def test_holm_hand_example() -> None:
    # Sorted p: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06
    # after the running max keeps it monotone).
    got = holm_correction([0.03, 0.01, 0.04, 0.02])
    assert got == pytest.approx([0.06, 0.04, 0.06, 0.06])


def test_holm_caps_passes_nan_and_keeps_mapping() -> None:
    got = holm_correction({"a": 0.5, "b": math.nan, "c": 0.4})
    assert list(got) == ["a", "b", "c"]
    assert got["a"] == 0.8 and got["c"] == 0.8 and math.isnan(got["b"])
    assert holm_correction([0.9, 0.8]) == [1.0, 1.0]
    assert holm_correction([]) == []
    with pytest.raises(DataError):
        holm_correction([1.2])


def test_speed_bca_and_paired() -> None:
    x = np.random.default_rng(0).normal(size=50)
    start = time.perf_counter()
    bootstrap_ci(x, n_resamples=10_000, method="bca", seed=0)
    bca_s = time.perf_counter() - start
    start = time.perf_counter()
    paired_bootstrap(x, x + 0.1, n_resamples=10_000, seed=0)
    paired_s = time.perf_counter() - start
    # Generous bound for slow CI machines; measured ~10-20 ms each on a 2-core box.
    assert bca_s < 1.0 and paired_s < 1.0


def test_singleton_clusters_reproduce_the_item_bootstrap_exactly() -> None:
    values = [0.0, 1.0, 2.0, 1.0, 0.5, 3.0, 1.0]
    item = bootstrap_ci(values, n_resamples=2000, seed=3)
    cluster = bootstrap_ci(values, n_resamples=2000, seed=3, groups=list(range(len(values))))
    assert (cluster.low, cluster.high) == pytest.approx((item.low, item.high))
    assert cluster.unit == "cluster" and item.unit == "item"
    a, b = [1.0, 2.0, 0.0, 1.0, 2.0], [0.0, 1.0, 0.0, 1.0, 1.0]
    pi = paired_bootstrap(a, b, n_resamples=2000, seed=4)
    pc = paired_bootstrap(a, b, n_resamples=2000, seed=4, groups=["p", "q", "r", "s", "t"])
    assert (pc.low, pc.high, pc.p_value) == pytest.approx((pi.low, pi.high, pi.p_value))


def test_cluster_interval_is_wider_when_items_share_an_input() -> None:
    rng = np.random.default_rng(0)
    shared = np.repeat(rng.normal(0, 1, 20), 6)
    values = shared + rng.normal(0, 0.3, shared.size)
    groups = np.repeat(np.arange(20), 6).tolist()
    item = bootstrap_ci(values, n_resamples=3000, seed=0)
    cluster = bootstrap_ci(values, n_resamples=3000, seed=0, groups=groups, method="bca")
    assert cluster.estimate == pytest.approx(item.estimate)
    assert (cluster.high - cluster.low) > 1.8 * (item.high - item.low)
    assert cluster.n == 120 and cluster.n_groups == 20


def test_cluster_bootstrap_drops_nan_items_and_refuses_other_statistics() -> None:
    ci = bootstrap_ci([1.0, math.nan, 2.0, 3.0], groups=["a", "b", "a", "c"], seed=0)
    assert ci.n == 3 and ci.n_groups == 2
    with pytest.raises(ConfigError):
        bootstrap_ci([1.0, 2.0], statistic="median", groups=["a", "b"])
    with pytest.raises(DataError):
        bootstrap_ci([1.0, 2.0], groups=["a"])
    old = ConfidenceInterval.model_validate(
        {
            "schema_version": 1,
            "estimate": 1,
            "low": 0,
            "high": 2,
            "confidence": 0.95,
            "method": "percentile",
            "n": 3,
            "n_resamples": 10,
            "draw_size": 3,
            "seed": 0,
        }
    )
    assert old.unit == "item" and old.n_groups is None


def test_one_unit_gives_no_test_rather_than_a_tiny_p() -> None:
    # One item (or one cluster) cannot show a difference: every resample is the sample itself.
    one = paired_bootstrap([2.0], [0.0], n_resamples=500, seed=0)
    assert one.delta == -2.0 and math.isnan(one.p_value) and math.isnan(one.low)
    grouped = paired_bootstrap([2.0, 2.0], [0.0, 1.0], groups=["g", "g"], n_resamples=500)
    assert grouped.n_groups == 1 and math.isnan(grouped.p_value)


def test_expansion_widens_small_samples_and_fades_with_many() -> None:
    rng = np.random.default_rng(3)
    for n, least, most in ((10, 1.10, 1.25), (400, 1.0, 1.01)):
        x = rng.exponential(1.0, n)
        plain = bootstrap_ci(x, n_resamples=20_000, seed=0, expand=False)
        wide = bootstrap_ci(x, n_resamples=20_000, seed=0)
        ratio = (wide.high - wide.low) / (plain.high - plain.low)
        assert least <= ratio <= most, (n, ratio)
        assert wide.expanded and not plain.expanded
    # Hesterberg's factor for n = 10: sqrt(10/9) * t_9(0.975) / z(0.975) = 1.21.
    assert bootstrap_ci([1.0], seed=0).expanded is False  # nothing to expand


def test_expanded_p_value_agrees_with_the_expanded_interval() -> None:
    rng = np.random.default_rng(4)
    for s in range(40):
        a = rng.normal(1.0, 1.0, 12)
        b = a + rng.normal(0.3, 0.8, 12)
        r = paired_bootstrap(a, b, n_resamples=4000, seed=s)
        if abs(r.p_value - 0.05) > 0.01:  # near the edge the two differ by resampling noise
            assert (r.low > 0 or r.high < 0) == (r.p_value < 0.05), r
        assert r.df == 11


def test_repeats_pair_with_a_baseline_judged_once() -> None:
    rng = np.random.default_rng(6)
    base = rng.integers(0, 3, 40).astype(float)
    aligned = np.vstack([np.clip(base - rng.integers(0, 2, 40), 0, 2) for _ in range(3)])
    aligned[1, 5] = math.nan  # a failed judgement drops only its own cell
    groups = (np.arange(40) // 4).tolist()
    r = paired_bootstrap(base, aligned, n_resamples=3000, seed=0, groups=groups)
    kept = ~np.isnan(aligned)
    expected = float((aligned - base)[kept].mean())
    assert r.delta == pytest.approx(expected) and r.n_repeats == 3 and r.n == 40
    assert r.n_groups == 10 and r.unit == "cluster"
    assert r.mean_a == pytest.approx(np.broadcast_to(base, aligned.shape)[kept].mean())
    # One repeat as a 2-d array is the plain cluster test.
    single = paired_bootstrap(base, aligned[:1], n_resamples=3000, seed=0, groups=groups)
    plain = paired_bootstrap(base, aligned[0], n_resamples=3000, seed=0, groups=groups)
    assert (single.low, single.high, single.p_value) == pytest.approx(
        (plain.low, plain.high, plain.p_value), abs=0.02
    )
    with pytest.raises(DataError):
        paired_bootstrap(np.zeros((2, 40)), np.zeros((3, 40)))


def test_repeats_that_disagree_widen_the_interval() -> None:
    rng = np.random.default_rng(8)
    base = rng.integers(0, 3, 60).astype(float)
    steady = np.vstack([base - 0.3 + rng.normal(0, 0.3, 60) for _ in range(4)])
    # Same items, but each repeat's judges are better or worse as a whole.
    shaky = steady + np.array([-0.4, 0.4, -0.2, 0.2])[:, None]
    a = paired_bootstrap(base, steady, n_resamples=4000, seed=1)
    b = paired_bootstrap(base, shaky, n_resamples=4000, seed=1)
    assert a.delta == pytest.approx(b.delta)
    assert (b.high - b.low) > 3 * (a.high - a.low)
    assert b.df is not None and a.df is not None and b.df < a.df
