"""Bootstrap confidence intervals, the paired bootstrap test and Holm's correction.

Items are the resampling unit (not item x dimension pairs), or, when ``groups`` is given,
whole clusters of items that share an input (16 summaries of one article, the notebooks of one
test case): resampling such items one by one treats them as independent and makes intervals too
narrow. Resamples are drawn as index matrices in chunks, so there is no Python loop per
resample and memory stays bounded.

>>> ci = bootstrap_ci([0.0, 1.0, 1.0, 2.0, 0.0, 1.0], n_resamples=2000, seed=0)
>>> ci.low < ci.estimate < ci.high
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from scipy.special import ndtr, ndtri

from judgealign.errors import ConfigError, DataError

# 2: ``unit`` and ``n_groups`` (cluster bootstrap); version-1 files load with unit "item".
BOOTSTRAP_SCHEMA_VERSION = 2

FloatArray = npt.NDArray[np.float64]
Method = Literal["percentile", "bca"]
# What one resample draws: single items, or whole clusters of items sharing an input.
Unit = Literal["item", "cluster"]
# A statistic is "mean", "median" or a callable ``f(x, axis=-1)`` reducing along ``axis``.
Statistic = Literal["mean", "median"] | Callable[..., Any]

# Upper bound on the elements of one resample-index chunk (~16 MB of int64).
_CHUNK_ELEMENTS = 1 << 21

_CONFIG = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class ConfidenceInterval(BaseModel):
    """A bootstrap interval for one statistic. ``draw_size`` is the size of each resample
    (in items, or in clusters when ``unit`` is "cluster"); ``n`` counts items throughout."""

    model_config = _CONFIG

    schema_version: int = BOOTSTRAP_SCHEMA_VERSION
    estimate: float
    low: float
    high: float
    confidence: float
    method: Method
    n: int
    n_resamples: int
    draw_size: int
    seed: int | None
    unit: Unit = "item"
    n_groups: int | None = None


class PairedComparison(BaseModel):
    """Paired bootstrap comparison of two judges' per-item errors; ``delta`` = b - a.

    With errors (lower is better), a negative ``delta`` means judge b is better.
    """

    model_config = _CONFIG

    schema_version: int = BOOTSTRAP_SCHEMA_VERSION
    mean_a: float
    mean_b: float
    delta: float
    low: float
    high: float
    p_value: float
    confidence: float
    n: int
    n_resamples: int
    seed: int | None
    unit: Unit = "item"
    n_groups: int | None = None


def _resolve(statistic: Statistic) -> Callable[..., Any]:
    if statistic == "mean":
        return np.mean
    if statistic == "median":
        return np.median
    if callable(statistic):
        return statistic
    raise ConfigError(f"unknown bootstrap statistic {statistic!r}; use mean, median or a callable")


def _as_1d(values: npt.ArrayLike, name: str) -> FloatArray:
    x = np.asarray(values, dtype=float)
    if x.ndim != 1:
        raise DataError(f"{name} must be a 1-d array of per-item values")
    return x


def _check_options(n_resamples: int, confidence: float) -> None:
    if n_resamples < 1:
        raise ConfigError(f"n_resamples must be positive, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _resample(
    values: FloatArray,
    stat: Callable[..., Any],
    n_resamples: int,
    draw_size: int,
    rng: np.random.Generator,
) -> FloatArray:
    """The statistic on ``n_resamples`` draws (with replacement) of ``draw_size`` items."""
    out = np.empty(n_resamples)
    chunk = max(1, _CHUNK_ELEMENTS // draw_size)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        idx = rng.integers(0, values.size, size=(size, draw_size))
        out[start : start + size] = stat(values[idx], axis=-1)
    return out


def _jackknife(values: FloatArray, stat: Callable[..., Any]) -> FloatArray:
    """Leave-one-out values of the statistic, built as index matrices in chunks."""
    n = values.size
    out = np.empty(n)
    cols = np.arange(n - 1)
    chunk = max(1, _CHUNK_ELEMENTS // max(n - 1, 1))
    for start in range(0, n, chunk):
        left_out = np.arange(start, min(start + chunk, n))
        idx = cols[None, :] + (cols[None, :] >= left_out[:, None])
        out[start : start + left_out.size] = stat(values[idx], axis=-1)
    return out


def _groups_of(groups: Sequence[Hashable], size: int, name: str) -> npt.NDArray[np.int64]:
    """Cluster codes 0..G-1 in order of first appearance, one per value."""
    if len(groups) != size:
        raise DataError(f"{name}: groups must have one entry per value ({len(groups)} != {size})")
    codes: dict[Hashable, int] = {}
    return np.fromiter((codes.setdefault(g, len(codes)) for g in groups), np.int64, size)


def _cluster_totals(
    values: FloatArray, codes: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray]:
    """Per-cluster sum and item count, for clusters that still hold an item."""
    _, dense = np.unique(codes, return_inverse=True)
    sums = np.asarray(np.bincount(dense, weights=values), dtype=np.float64)
    counts = np.asarray(np.bincount(dense), dtype=np.float64)
    return sums, counts


def _resample_clusters(
    sums: FloatArray, counts: FloatArray, n_resamples: int, rng: np.random.Generator
) -> FloatArray:
    """The item mean of ``n_resamples`` draws of G clusters from the G available.

    The statistic is the ratio mean (all drawn items' total over their count), so a large
    cluster weighs as many items as it holds, as in the estimate itself.
    """
    g = sums.size
    out = np.empty(n_resamples)
    chunk = max(1, _CHUNK_ELEMENTS // g)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        idx = rng.integers(0, g, size=(size, g))
        out[start : start + size] = sums[idx].sum(axis=-1) / counts[idx].sum(axis=-1)
    return out


def _cluster_jackknife(sums: FloatArray, counts: FloatArray) -> FloatArray:
    """Leave-one-cluster-out means."""
    out: FloatArray = (sums.sum() - sums) / (counts.sum() - counts)
    return out


def _interval(
    boot: FloatArray,
    estimate: float,
    jackknife: Callable[[], FloatArray],
    confidence: float,
    method: Method,
) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    probs = np.array([alpha, 1.0 - alpha])
    if method == "bca":
        # Bias correction from the share of resamples below the estimate (ties count half, as
        # in scipy), clipped so a degenerate distribution cannot give an infinite z0.
        b = boot.size
        share = (np.count_nonzero(boot < estimate) + np.count_nonzero(boot <= estimate)) / (2 * b)
        z0 = ndtri(np.clip(share, 0.5 / b, 1.0 - 0.5 / b))
        jack = jackknife()
        d = jack.mean() - jack
        spread = float((d**2).sum())
        accel = float((d**3).sum()) / (6.0 * spread**1.5) if spread > 0 else 0.0
        z = ndtri(probs)
        probs = ndtr(z0 + (z0 + z) / (1.0 - accel * (z0 + z)))
    elif method != "percentile":
        raise ConfigError(f"unknown bootstrap method {method!r}; use percentile or bca")
    low, high = np.quantile(boot, probs)
    return float(low), float(high)


def bootstrap_ci(
    values: npt.ArrayLike,
    statistic: Statistic = "mean",
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: int | None = 0,
    draw_size: int | None = None,
    groups: Sequence[Hashable] | None = None,
) -> ConfidenceInterval:
    """Bootstrap confidence interval of a statistic of per-item values (NaN items dropped).

    Resamples n items from the n available (``method`` "percentile", or "bca": bias-corrected
    and accelerated, acceleration from the jackknife). Bounds are NaN with fewer than 2 items.

    ``groups`` (one cluster key per value) switches to the cluster bootstrap: G whole clusters
    are drawn from the G available and the statistic is the mean over the drawn items (the
    jackknife for BCa leaves one cluster out). Only the mean is supported, and bounds are NaN
    with fewer than 2 clusters. Use it whenever items share an input.

    ``draw_size`` exists only to reproduce a reference study that drew, e.g., 100 items from 50.
    Drawing more items than exist makes the interval too narrow by about sqrt(n / draw_size)
    (29% narrower for 50 vs 100), i.e. anti-conservative; do not use it to report results. It is
    supported with the percentile method and item resampling only.

    >>> ci = bootstrap_ci([1.0, 2.0, 3.0, 4.0], n_resamples=1000, seed=1, method="bca")
    >>> (ci.estimate, ci.n, ci.draw_size)
    (2.5, 4, 4)
    >>> ci = bootstrap_ci([1.0, 1.0, 3.0, 3.0, 2.0], groups=["a", "a", "b", "b", "c"], seed=0)
    >>> (ci.estimate, ci.unit, ci.n, ci.n_groups)
    (2.0, 'cluster', 5, 3)
    """
    _check_options(n_resamples, confidence)
    x = _as_1d(values, "values")
    codes = _groups_of(groups, x.size, "bootstrap_ci") if groups is not None else None
    keep = ~np.isnan(x)
    x = x[keep]
    if draw_size is not None and (method != "percentile" or codes is not None):
        raise ConfigError(
            "bootstrap_ci: draw_size is only supported with method='percentile' and no groups"
        )
    if draw_size is not None and draw_size < 1:
        raise ConfigError(f"bootstrap_ci: draw_size must be positive, got {draw_size}")
    rng = np.random.default_rng(seed)
    if codes is not None:
        if statistic != "mean":
            raise ConfigError("bootstrap_ci: the cluster bootstrap supports the mean only")
        sums, counts = _cluster_totals(x, codes[keep])
        estimate = float(x.mean()) if x.size else math.nan
        low = high = math.nan
        if sums.size >= 2:
            boot = _resample_clusters(sums, counts, n_resamples, rng)
            low, high = _interval(
                boot, estimate, lambda: _cluster_jackknife(sums, counts), confidence, method
            )
        return ConfidenceInterval(
            estimate=estimate,
            low=low,
            high=high,
            confidence=confidence,
            method=method,
            n=int(x.size),
            n_resamples=n_resamples,
            draw_size=int(sums.size),
            seed=seed,
            unit="cluster",
            n_groups=int(sums.size),
        )
    stat = _resolve(statistic)
    draws = x.size if draw_size is None else draw_size
    estimate = float(stat(x, axis=-1)) if x.size else math.nan
    low = high = math.nan
    if x.size >= 2:
        boot = _resample(x, stat, n_resamples, draws, rng)
        low, high = _interval(boot, estimate, lambda: _jackknife(x, stat), confidence, method)
    return ConfidenceInterval(
        estimate=estimate,
        low=low,
        high=high,
        confidence=confidence,
        method=method,
        n=int(x.size),
        n_resamples=n_resamples,
        draw_size=draws,
        seed=seed,
    )


def paired_bootstrap(
    errors_a: npt.ArrayLike,
    errors_b: npt.ArrayLike,
    n_resamples: int = 10_000,
    seed: int | None = 0,
    confidence: float = 0.95,
    groups: Sequence[Hashable] | None = None,
) -> PairedComparison:
    """Compare two judges on the same items by resampling items jointly.

    Items where either error is NaN are dropped from both. ``delta`` is mean(b) - mean(a) with a
    percentile interval. The two-sided p-value is the standard bootstrap test of "mean
    difference = 0": the per-item differences are shifted to mean 0 (imposing H0), resampled,
    and p = (#{|delta*| >= |delta_obs|} + 1) / (B + 1), so it is never 0 and is 1 for identical
    inputs. The shifted resample means are the unshifted ones minus delta_obs, so one set of
    resamples serves both the interval and the test. With ``groups`` whole clusters are
    resampled (see :func:`bootstrap_ci`); the shift argument holds for the ratio mean too.

    >>> r = paired_bootstrap([1, 1, 2, 1, 0], [0, 0, 1, 0, 0], n_resamples=999, seed=0)
    >>> (r.delta, r.p_value < 0.05)
    (-0.8, True)
    >>> paired_bootstrap([1, 1, 2, 1], [0, 0, 1, 0], groups=["x", "x", "y", "y"]).n_groups
    2
    """
    _check_options(n_resamples, confidence)
    a, b = _as_1d(errors_a, "errors_a"), _as_1d(errors_b, "errors_b")
    if a.size != b.size:
        raise DataError(f"paired_bootstrap needs equal lengths, got {a.size} and {b.size}")
    codes = _groups_of(groups, a.size, "paired_bootstrap") if groups is not None else None
    keep = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[keep], b[keep]
    diff = b - a
    n = int(diff.size)
    delta = float(diff.mean()) if n else math.nan
    low = high = p_value = math.nan
    rng = np.random.default_rng(seed)
    n_groups: int | None = None
    boot: FloatArray | None = None
    if codes is not None:
        sums, counts = _cluster_totals(diff, codes[keep])
        n_groups = int(sums.size)
        if n_groups >= 1:
            boot = _resample_clusters(sums, counts, n_resamples, rng)
    elif n >= 1:
        boot = _resample(diff, np.mean, n_resamples, n, rng)
    if boot is not None:
        low, high = _interval(boot, delta, lambda: diff, confidence, "percentile")
        # Tolerance so a resample equal to |delta_obs| up to rounding counts as extreme.
        tol = 1e-12 * max(1.0, abs(delta))
        extreme = int(np.count_nonzero(np.abs(boot - delta) >= abs(delta) - tol))
        p_value = (extreme + 1) / (n_resamples + 1)
    return PairedComparison(
        mean_a=float(a.mean()) if n else math.nan,
        mean_b=float(b.mean()) if n else math.nan,
        delta=delta,
        low=low,
        high=high,
        p_value=p_value,
        confidence=confidence,
        n=n,
        n_resamples=n_resamples,
        seed=seed,
        unit="item" if codes is None else "cluster",
        n_groups=n_groups,
    )


@overload
def holm_correction(p_values: Mapping[str, float]) -> dict[str, float]: ...
@overload
def holm_correction(p_values: Sequence[float]) -> list[float]: ...
def holm_correction(
    p_values: Mapping[str, float] | Sequence[float],
) -> dict[str, float] | list[float]:
    """Holm's step-down adjustment (family-wise error), same shape out as in; NaN passes through.

    The k-th smallest of m p-values becomes max over j <= k of min(1, (m - j + 1) p_(j)).

    >>> holm_correction([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    if isinstance(p_values, Mapping):
        keys = list(p_values)
        return dict(zip(keys, holm_correction([p_values[k] for k in keys]), strict=True))
    p = np.asarray(p_values, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise DataError("holm_correction: p-values must lie in [0, 1]")
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return [float(v) for v in out]
