"""Bootstrap confidence intervals, the paired bootstrap test and Holm's correction.

Items are the resampling unit (not item x dimension pairs), or, when ``groups`` is given,
whole clusters of items that share an input (16 summaries of one article, the notebooks of one
test case): resampling such items one by one treats them as independent and makes intervals too
narrow. Resamples are drawn as index matrices in chunks, so there is no Python loop per
resample and memory stays bounded.

Two corrections make the intervals hold their level with few units (tests/test_coverage.py
measures it on 1,000 simulated sets):

- **Small-sample expansion** (Hesterberg 2015, "What teachers should know about the
  bootstrap", The American Statistician 69(4), section 5.1). A bootstrap distribution of a mean
  of k units has variance (k - 1)/k times the unbiased one and normal tails where Student's t
  belongs, so plain percentile and BCa intervals cover 89-93% instead of 95% with 10-40
  clusters. The expanded interval reads the bootstrap quantiles at
  ``Phi(+-sqrt(k / (k - 1)) * t_{k-1, 1-alpha/2})`` instead of ``Phi(+-z_{1-alpha/2})``. The
  paired test's p-value goes through the same map (its normal score is shrunk by
  sqrt((k - 1) / k) and read on t with k - 1 degrees of freedom), so "0 outside the expanded
  95% interval" and "p < 0.05" agree. ``expand=False`` gives the textbook intervals (they
  match ``scipy.stats.bootstrap``).
- **Repeats** (``paired_bootstrap`` with 2-d errors, one row per repeat of the
  cross-validation): a judge aligned on other folds is another draw of reflection and
  retrieval, so a repeat's errors vary beyond item sampling. Repeats and clusters are crossed
  (every repeat judges every item), and no bootstrap is exact for a crossed design; resampling
  both independently (Owen 2007, "The pigeonhole bootstrap", Annals of Applied Statistics 1(2))
  is mildly conservative: the repeat-by-item interaction is counted twice. The expansion then
  uses Satterthwaite's degrees of freedom for the two variance parts (clusters: G - 1,
  repeats: R - 1), so three repeats with a large alignment variance get the wide t they need.

>>> ci = bootstrap_ci([0.0, 1.0, 1.0, 2.0, 0.0, 1.0], n_resamples=2000, seed=0)
>>> ci.low < ci.estimate < ci.high
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from scipy.special import ndtr, ndtri, stdtr, stdtrit

from judgealign.errors import ConfigError, DataError

# 2: ``unit`` and ``n_groups`` (cluster bootstrap); version-1 files load with unit "item".
# 3: ``expanded`` (small-sample expansion) and, on comparisons, ``n_repeats``; older files load
#    with ``expanded`` False (the intervals they hold were not expanded) and one repeat.
BOOTSTRAP_SCHEMA_VERSION = 3

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
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
    (in items, or in clusters when ``unit`` is "cluster"); ``n`` counts items throughout.
    ``expanded``: the small-sample expansion was applied (see the module docstring)."""

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
    expanded: bool = False


class PairedComparison(BaseModel):
    """Paired bootstrap comparison of two judges' per-item errors; ``delta`` = b - a.

    With errors (lower is better), a negative ``delta`` means judge b is better. With
    ``n_repeats`` > 1 the means are over every (repeat, item) cell and the interval and p-value
    carry the variance between repeats too; ``df`` is the degrees of freedom of the
    small-sample expansion (None without it).
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
    n_repeats: int = 1
    expanded: bool = False
    df: float | None = None


@dataclass(frozen=True)
class _Expansion:
    """How far to widen: the bootstrap variance is ``1 / factor`` of the unbiased one, and the
    statistic's tails are Student's t with ``df`` degrees of freedom. ``factor`` 1 and
    ``df`` inf: no expansion."""

    factor: float = 1.0
    df: float = math.inf

    @classmethod
    def of_units(cls, k: int, expand: bool) -> _Expansion:
        """The mean of ``k`` independent units (items, or clusters)."""
        if not expand or k < 2:
            return cls()
        return cls(factor=k / (k - 1), df=float(k - 1))

    @property
    def active(self) -> bool:
        return self.factor != 1.0 or math.isfinite(self.df)

    def z(self, tail: float) -> float:
        """The normal score to read the bootstrap at, for an upper tail of ``tail``."""
        if not self.active:
            return float(ndtri(1.0 - tail))
        return math.sqrt(self.factor) * float(stdtrit(self.df, 1.0 - tail))

    def p_value(self, p_boot: float) -> float:
        """A two-sided bootstrap p-value mapped the way the interval is widened."""
        if not self.active or p_boot >= 1.0:
            return p_boot
        t = float(ndtri(1.0 - p_boot / 2.0)) / math.sqrt(self.factor)
        return float(2.0 * stdtr(self.df, -t))


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
    expansion: _Expansion,
) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    z = expansion.z(alpha)
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
        zs = np.array([-z, z])
        probs = ndtr(z0 + (z0 + zs) / (1.0 - accel * (z0 + zs)))
    elif method == "percentile":
        probs = ndtr(np.array([-z, z]))
    else:
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
    *,
    expand: bool = True,
) -> ConfidenceInterval:
    """Bootstrap confidence interval of a statistic of per-item values (NaN items dropped).

    Resamples n items from the n available (``method`` "percentile", or "bca": bias-corrected
    and accelerated, acceleration from the jackknife). Bounds are NaN with fewer than 2 items.
    ``expand`` widens the interval for small samples (module docstring); ``expand=False``
    gives the textbook interval.

    ``groups`` (one cluster key per value) switches to the cluster bootstrap: G whole clusters
    are drawn from the G available and the statistic is the mean over the drawn items (the
    jackknife for BCa leaves one cluster out; the expansion counts clusters). Only the mean is
    supported, and bounds are NaN with fewer than 2 clusters. Use it whenever items share an
    input.

    ``draw_size`` exists only to reproduce a reference study that drew, e.g., 100 items from 50.
    Drawing more items than exist makes the interval too narrow by about sqrt(n / draw_size)
    (29% narrower for 50 vs 100), i.e. anti-conservative; do not use it to report results. It is
    supported with the percentile method and item resampling only, and never expanded.

    >>> ci = bootstrap_ci([1.0, 2.0, 3.0, 4.0], n_resamples=1000, seed=1, method="bca")
    >>> (ci.estimate, ci.n, ci.draw_size, ci.expanded)
    (2.5, 4, 4, True)
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
        expansion = _Expansion.of_units(int(sums.size), expand)
        if sums.size >= 2:
            boot = _resample_clusters(sums, counts, n_resamples, rng)
            low, high = _interval(
                boot,
                estimate,
                lambda: _cluster_jackknife(sums, counts),
                confidence,
                method,
                expansion,
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
            expanded=expansion.active,
        )
    stat = _resolve(statistic)
    draws = x.size if draw_size is None else draw_size
    expansion = _Expansion.of_units(int(x.size), expand and draw_size is None)
    estimate = float(stat(x, axis=-1)) if x.size else math.nan
    low = high = math.nan
    if x.size >= 2:
        boot = _resample(x, stat, n_resamples, draws, rng)
        low, high = _interval(
            boot, estimate, lambda: _jackknife(x, stat), confidence, method, expansion
        )
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
        expanded=expansion.active,
    )


def _as_cells(values: npt.ArrayLike, name: str) -> FloatArray:
    """Errors as a repeats x items matrix (a 1-d array is one repeat)."""
    x = np.asarray(values, dtype=float)
    if x.ndim == 1:
        return x[None, :]
    if x.ndim != 2:
        raise DataError(f"{name} must hold per-item values, or repeats x items")
    return x


def _crossed_totals(diff: FloatArray, codes: IntArray) -> tuple[FloatArray, FloatArray]:
    """Per (repeat, cluster): the sum of the kept differences and their count. Repeats and
    clusters with no kept cell are left out."""
    kept = ~np.isnan(diff)
    rows = np.flatnonzero(kept.any(axis=1))
    _, dense = np.unique(codes[kept.any(axis=0)], return_inverse=True)
    cluster_of = np.full(codes.size, -1)
    cluster_of[kept.any(axis=0)] = dense
    g = int(dense.max()) + 1 if dense.size else 0
    sums = np.zeros((rows.size, g))
    counts = np.zeros((rows.size, g))
    for out_row, r in enumerate(rows):
        cols = np.flatnonzero(kept[r])
        sums[out_row] = np.bincount(cluster_of[cols], weights=diff[r, cols], minlength=g)
        counts[out_row] = np.bincount(cluster_of[cols], minlength=g)
    return sums, counts


def _draw_counts(n_draws: int, size: int, rng: np.random.Generator) -> FloatArray:
    """How often each of ``n_draws`` units is drawn in ``size`` resamples of ``n_draws``."""
    idx = rng.integers(0, n_draws, size=(size, n_draws))
    flat = (np.arange(size)[:, None] * n_draws + idx).ravel()
    return np.bincount(flat, minlength=size * n_draws).reshape(size, n_draws).astype(float)


def _resample_crossed(
    sums: FloatArray, counts: FloatArray, n_resamples: int, rng: np.random.Generator
) -> FloatArray:
    """Ratio means of resamples that draw R repeats and G clusters independently (the
    pigeonhole bootstrap); a resample whose drawn cells hold no value is NaN."""
    r, g = sums.shape
    out = np.empty(n_resamples)
    chunk = max(1, _CHUNK_ELEMENTS // (r + g))
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        w_r = _draw_counts(r, size, rng)
        w_g = _draw_counts(g, size, rng)
        num = np.einsum("bg,bg->b", w_r @ sums, w_g)
        den = np.einsum("bg,bg->b", w_r @ counts, w_g)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + size] = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    return out


def _crossed_expansion(sums: FloatArray, counts: FloatArray, expand: bool) -> _Expansion:
    """The expansion for a repeats x clusters mean: the unbiased variance over what the
    pigeonhole bootstrap is expected to give, and Satterthwaite's degrees of freedom."""
    r, g = sums.shape
    if not expand or g < 2:
        return _Expansion()
    if r < 2:
        return _Expansion.of_units(g, expand)
    y, n = sums.mean(axis=0), counts.mean(axis=0)
    estimate = y.sum() / n.sum()
    v_item = g / (g - 1) * float(((y - estimate * n) ** 2).sum()) / float(n.sum()) ** 2
    per_repeat = sums.sum(axis=1) / np.maximum(counts.sum(axis=1), 1e-300)
    v_rep = float(np.var(per_repeat, ddof=1)) / r
    expected = v_item * (g - 1) / g + v_rep * (r - 1) / r
    if expected <= 0:
        return _Expansion.of_units(g, expand)
    total = v_item + v_rep
    df = total**2 / (v_item**2 / (g - 1) + v_rep**2 / (r - 1))
    return _Expansion(factor=total / expected, df=df)


def paired_bootstrap(
    errors_a: npt.ArrayLike,
    errors_b: npt.ArrayLike,
    n_resamples: int = 10_000,
    seed: int | None = 0,
    confidence: float = 0.95,
    groups: Sequence[Hashable] | None = None,
    *,
    expand: bool = True,
) -> PairedComparison:
    """Compare two judges on the same items by resampling items jointly.

    Items where either error is NaN are dropped from both. ``delta`` is mean(b) - mean(a) with a
    percentile interval. The two-sided p-value is the standard bootstrap test of "mean
    difference = 0": the per-item differences are shifted to mean 0 (imposing H0), resampled,
    and p = (#{|delta*| >= |delta_obs|} + 1) / (B + 1), so it is never 0 and is 1 for identical
    inputs; ``expand`` then maps it like the interval (module docstring). The shifted resample
    means are the unshifted ones minus delta_obs, so one set of resamples serves both the
    interval and the test. With ``groups`` whole clusters are resampled (see
    :func:`bootstrap_ci`); the shift argument holds for the ratio mean too. Fewer than two
    items (clusters) give NaN bounds and p.

    Errors may be 2-d, repeats x items (a 1-d side, such as a baseline judged once, is the
    same in every repeat): each resample then draws repeats and clusters independently, so
    the interval and the test carry the variance between repeats of the cross-validation as
    well as item sampling (module docstring).

    >>> r = paired_bootstrap([1, 1, 2, 1, 0], [0, 0, 1, 0, 0], n_resamples=999, seed=0)
    >>> (r.delta, r.p_value < 0.05)
    (-0.8, True)
    >>> paired_bootstrap([1, 1, 2, 1], [0, 0, 1, 0], groups=["x", "x", "y", "y"]).n_groups
    2
    >>> r = paired_bootstrap([1, 1, 2, 1], [[0, 1, 1, 0], [1, 0, 1, 1]], n_resamples=999)
    >>> (r.n, r.n_repeats, r.delta)
    (4, 2, -0.625)
    """
    _check_options(n_resamples, confidence)
    a, b = _as_cells(errors_a, "errors_a"), _as_cells(errors_b, "errors_b")
    if a.shape[1] != b.shape[1]:
        raise DataError(f"paired_bootstrap needs equal lengths, got {a.shape[1]} and {b.shape[1]}")
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise DataError(f"paired_bootstrap: {a.shape[0]} and {b.shape[0]} repeats do not pair")
    a, b = np.broadcast_arrays(a, b)
    if a.shape[0] > 1 or np.asarray(errors_b).ndim == 2 or np.asarray(errors_a).ndim == 2:
        return _paired_repeats(a, b, n_resamples, seed, confidence, groups, expand)
    a, b = a[0], b[0]
    codes = _groups_of(groups, a.size, "paired_bootstrap") if groups is not None else None
    keep = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[keep], b[keep]
    diff = b - a
    n = int(diff.size)
    delta = float(diff.mean()) if n else math.nan
    rng = np.random.default_rng(seed)
    n_groups: int | None = None
    if codes is not None:
        sums, counts = _cluster_totals(diff, codes[keep])
        n_groups = int(sums.size)
        expansion = _Expansion.of_units(n_groups, expand)
        boot = _resample_clusters(sums, counts, n_resamples, rng) if n_groups >= 2 else None
    else:
        expansion = _Expansion.of_units(n, expand)
        boot = _resample(diff, np.mean, n_resamples, n, rng) if n >= 2 else None
    low, high, p_value = _test(boot, delta, confidence, expansion)
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
        expanded=expansion.active,
        df=expansion.df if expansion.active else None,
    )


def _test(
    boot: FloatArray | None,
    delta: float,
    confidence: float,
    expansion: _Expansion,
) -> tuple[float, float, float]:
    """(low, high, p) of the paired test from resampled mean differences (None: too few)."""
    if boot is None:
        return math.nan, math.nan, math.nan
    boot = boot[~np.isnan(boot)]
    if boot.size == 0:
        return math.nan, math.nan, math.nan
    low, high = _interval(boot, delta, lambda: boot, confidence, "percentile", expansion)
    # Tolerance so a resample equal to |delta_obs| up to rounding counts as extreme.
    tol = 1e-12 * max(1.0, abs(delta))
    extreme = int(np.count_nonzero(np.abs(boot - delta) >= abs(delta) - tol))
    p_boot = (extreme + 1) / (boot.size + 1)
    return low, high, expansion.p_value(p_boot)


def _paired_repeats(
    a: FloatArray,
    b: FloatArray,
    n_resamples: int,
    seed: int | None,
    confidence: float,
    groups: Sequence[Hashable] | None,
    expand: bool,
) -> PairedComparison:
    """``paired_bootstrap`` over repeats x items (the pigeonhole bootstrap)."""
    n_items = a.shape[1]
    if groups is not None:
        codes = _groups_of(groups, n_items, "paired_bootstrap")
    else:
        codes = np.arange(n_items, dtype=np.int64)
    diff = b - a  # NaN where either is
    kept = ~np.isnan(diff)
    sums, counts = _crossed_totals(diff, codes)
    cells = int(kept.sum())
    delta = float(sums.sum() / counts.sum()) if cells else math.nan
    n_units = sums.shape[1]
    expansion = _crossed_expansion(sums, counts, expand)
    boot = None
    if n_units >= 2:
        boot = _resample_crossed(sums, counts, n_resamples, np.random.default_rng(seed))
    low, high, p_value = _test(boot, delta, confidence, expansion)
    return PairedComparison(
        mean_a=float(a[kept].mean()) if cells else math.nan,
        mean_b=float(b[kept].mean()) if cells else math.nan,
        delta=delta,
        low=low,
        high=high,
        p_value=p_value,
        confidence=confidence,
        n=int(kept.any(axis=0).sum()),
        n_resamples=n_resamples,
        seed=seed,
        unit="item" if groups is None else "cluster",
        n_groups=n_units if groups is not None else None,
        n_repeats=int(sums.shape[0]),
        expanded=expansion.active,
        df=expansion.df if expansion.active else None,
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
