"""Bootstrap confidence intervals, the paired bootstrap test and Holm's correction.

Items are the resampling unit (not item x dimension pairs). Resamples are drawn as index
matrices in chunks, so there is no Python loop per resample and memory stays bounded.

>>> ci = bootstrap_ci([0.0, 1.0, 1.0, 2.0, 0.0, 1.0], n_resamples=2000, seed=0)
>>> ci.low < ci.estimate < ci.high
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict
from scipy.special import ndtr, ndtri

from judgealign.errors import ConfigError, DataError

BOOTSTRAP_SCHEMA_VERSION = 1

FloatArray = npt.NDArray[np.float64]
Method = Literal["percentile", "bca"]
# A statistic is "mean", "median" or a callable ``f(x, axis=-1)`` reducing along ``axis``.
Statistic = Literal["mean", "median"] | Callable[..., Any]

# Upper bound on the elements of one resample-index chunk (~16 MB of int64).
_CHUNK_ELEMENTS = 1 << 21

_CONFIG = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class ConfidenceInterval(BaseModel):
    """A bootstrap interval for one statistic. ``draw_size`` is the size of each resample."""

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


def _interval(
    boot: FloatArray,
    estimate: float,
    values: FloatArray,
    stat: Callable[..., Any],
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
        jack = _jackknife(values, stat)
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
) -> ConfidenceInterval:
    """Bootstrap confidence interval of a statistic of per-item values (NaN items dropped).

    Resamples n items from the n available (``method`` "percentile", or "bca": bias-corrected
    and accelerated, acceleration from the jackknife). Bounds are NaN with fewer than 2 items.

    ``draw_size`` exists only to reproduce a reference study that drew, e.g., 100 items from 50.
    Drawing more items than exist makes the interval too narrow by about sqrt(n / draw_size)
    (29% narrower for 50 vs 100), i.e. anti-conservative; do not use it to report results. It is
    supported with the percentile method only.

    >>> ci = bootstrap_ci([1.0, 2.0, 3.0, 4.0], n_resamples=1000, seed=1, method="bca")
    >>> (ci.estimate, ci.n, ci.draw_size)
    (2.5, 4, 4)
    """
    _check_options(n_resamples, confidence)
    x = _as_1d(values, "values")
    x = x[~np.isnan(x)]
    stat = _resolve(statistic)
    if draw_size is not None and method != "percentile":
        raise ConfigError("bootstrap_ci: draw_size is only supported with method='percentile'")
    if draw_size is not None and draw_size < 1:
        raise ConfigError(f"bootstrap_ci: draw_size must be positive, got {draw_size}")
    draws = x.size if draw_size is None else draw_size
    estimate = float(stat(x, axis=-1)) if x.size else math.nan
    low = high = math.nan
    if x.size >= 2:
        boot = _resample(x, stat, n_resamples, draws, np.random.default_rng(seed))
        low, high = _interval(boot, estimate, x, stat, confidence, method)
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
) -> PairedComparison:
    """Compare two judges on the same items by resampling items jointly.

    Items where either error is NaN are dropped from both. ``delta`` is mean(b) - mean(a) with a
    percentile interval. The two-sided p-value is the standard bootstrap test of "mean
    difference = 0": the per-item differences are shifted to mean 0 (imposing H0), resampled,
    and p = (#{|delta*| >= |delta_obs|} + 1) / (B + 1), so it is never 0 and is 1 for identical
    inputs. The shifted resample means are the unshifted ones minus delta_obs, so one set of
    resamples serves both the interval and the test.

    >>> r = paired_bootstrap([1, 1, 2, 1, 0], [0, 0, 1, 0, 0], n_resamples=999, seed=0)
    >>> (r.delta, r.p_value < 0.05)
    (-0.8, True)
    """
    _check_options(n_resamples, confidence)
    a, b = _as_1d(errors_a, "errors_a"), _as_1d(errors_b, "errors_b")
    if a.size != b.size:
        raise DataError(f"paired_bootstrap needs equal lengths, got {a.size} and {b.size}")
    keep = ~np.isnan(a) & ~np.isnan(b)
    a, b = a[keep], b[keep]
    diff = b - a
    n = int(diff.size)
    delta = float(diff.mean()) if n else math.nan
    low = high = p_value = math.nan
    if n >= 1:
        boot = _resample(diff, np.mean, n_resamples, n, np.random.default_rng(seed))
        low, high = _interval(boot, delta, diff, np.mean, confidence, "percentile")
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
