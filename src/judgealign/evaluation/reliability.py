"""Agreement among human raters: Krippendorff's alpha and the human-human MAE.

They tell how far a judge can hope to get: a judge closer to the experts than the experts are
to each other is fitting noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from itertools import combinations
from typing import Literal

import numpy as np
import numpy.typing as npt

from judgealign.errors import DataError

FloatArray = npt.NDArray[np.float64]
AlphaMetric = Literal["nominal", "ordinal", "interval", "ratio"]


def krippendorff_alpha(reliability: npt.ArrayLike, metric: AlphaMetric = "interval") -> float:
    """Krippendorff's alpha for a raters x units matrix (NaN = missing), via coincidences.

    Units with fewer than two values are dropped; NaN without variation among pairable values.
    Follows Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability".

    >>> round(krippendorff_alpha([[1, 2, 3, 3], [1, 2, 3, 4]], "interval"), 3)
    0.889
    """
    data = np.asarray(reliability, dtype=float)
    if data.ndim != 2:
        raise DataError("krippendorff_alpha needs a 2-d raters x units matrix")
    present = ~np.isnan(data)
    values, codes = np.unique(data[present], return_inverse=True)
    counts = np.zeros((data.shape[1], values.size))
    np.add.at(counts, (np.nonzero(present)[1], codes), 1.0)  # row-major order matches data[...]
    counts = counts[counts.sum(1) >= 2]
    m_u = counts.sum(1)
    if counts.shape[0] == 0:
        return math.nan
    weighted = counts / (m_u - 1)[:, None]
    coincidence = weighted.T @ counts - np.diag(weighted.sum(0))
    n_c = coincidence.sum(1)
    n = float(n_c.sum())
    delta2 = _alpha_delta2(values, n_c, metric)
    expected = float((np.outer(n_c, n_c) * delta2).sum())
    if expected == 0.0:
        return math.nan
    return 1.0 - (n - 1.0) * float((coincidence * delta2).sum()) / expected


def _alpha_delta2(values: FloatArray, n_c: FloatArray, metric: AlphaMetric) -> FloatArray:
    diff = values[:, None] - values[None, :]
    if metric == "nominal":
        return np.asarray(diff != 0, dtype=float)
    if metric == "interval":
        return np.asarray(diff**2, dtype=float)
    if metric == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = diff / (values[:, None] + values[None, :])
        return np.nan_to_num(ratio**2, nan=0.0)
    if metric == "ordinal":
        # sum_{g=c..k} n_g - (n_c + n_k)/2 equals the gap between mid-ranks of c and k.
        mid_rank = np.cumsum(n_c) - n_c / 2.0
        return np.asarray((mid_rank[:, None] - mid_rank[None, :]) ** 2, dtype=float)
    raise DataError(f"unknown Krippendorff metric {metric!r}; use nominal/ordinal/interval/ratio")


def rater_scores(
    ratings: Mapping[str, Mapping[str, float | None]], na_value: float | None
) -> list[FloatArray]:
    """Per item, the applicable scores of its raters, for items with at least two."""
    items = (np.array([np.nan if s is None else s for s in r.values()]) for r in ratings.values())
    kept = (s[~np.isnan(s) & (s != na_value)] for s in items)
    return [s.astype(float) for s in kept if s.size >= 2]


def human_human_errors(
    ratings: Mapping[str, Mapping[str, float | None]],
    na_value: float | None = None,
    method: Literal["leave_one_out", "pairwise"] = "leave_one_out",
) -> dict[str, float]:
    """Per item with at least two applicable ratings, how far its raters are from each other
    (see :func:`human_human_mae`, their mean).

    >>> human_human_errors({"x": {"ann": 1, "bob": 3}, "y": {"ann": 2}})
    {'x': 2.0}
    """
    if method not in ("leave_one_out", "pairwise"):
        raise DataError(f"unknown method {method!r}; use leave_one_out or pairwise")
    out: dict[str, float] = {}
    for item, by_rater in ratings.items():
        s = np.array([np.nan if v is None else v for v in by_rater.values()], dtype=float)
        s = s[~np.isnan(s) & (s != na_value)]
        if s.size < 2:
            continue
        if method == "pairwise":
            out[item] = float(np.mean([abs(a - b) for a, b in combinations(s, 2)]))
        else:
            others = (s.sum() - s) / (s.size - 1)
            out[item] = float(np.mean(np.abs(s - others)))
    return out


def human_human_mae(
    ratings: Mapping[str, Mapping[str, float | None]],
    na_value: float | None = None,
    method: Literal["leave_one_out", "pairwise"] = "leave_one_out",
) -> float:
    """How far experts are from each other: the level a judge can hope to reach.

    ``ratings`` maps item -> rater -> score; N/A (``None``/NaN/``na_value``) ratings are dropped
    and items keep only if at least two applicable scores remain. Per item, "leave_one_out"
    averages |rater - mean of the other raters| over raters (comparable to a judge scored against
    an expert mean); "pairwise" averages |a - b| over rater pairs. The result is the mean over
    items (NaN when none qualify). With two raters both variants agree.

    >>> human_human_mae({"x": {"ann": 1, "bob": 3, "cy": 2}})
    1.0
    """
    per_item = list(human_human_errors(ratings, na_value, method).values())
    return float(np.mean(per_item)) if per_item else math.nan


def human_alpha(
    ratings: Mapping[str, Mapping[str, float | None]],
    na_value: float | None = None,
    metric: AlphaMetric = "interval",
) -> float:
    """Krippendorff's alpha among the raters (N/A ratings are missing values; items with fewer
    than two applicable ratings drop out). NaN when no item has two.

    >>> round(human_alpha({"a": {"x": 1, "y": 1}, "b": {"x": 3, "y": 2}, "c": {"x": 2}}), 3)
    0.727
    """
    raters = sorted({r for by in ratings.values() for r in by})
    if not raters:
        return math.nan
    column = {r: n for n, r in enumerate(raters)}
    matrix = np.full((len(raters), len(ratings)), np.nan)
    for unit, by_rater in enumerate(ratings.values()):
        for rater, score in by_rater.items():
            if score is not None and not math.isnan(score) and score != na_value:
                matrix[column[rater], unit] = score
    return krippendorff_alpha(matrix, metric)
