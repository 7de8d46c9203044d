"""The calibrated baseline's affine map: how far a scale correction alone gets, with no memory.

Every report carries a reference line that an aligned judge has to beat to claim more than a
scale fix: the unaligned judge's scores of each test fold, mapped onto the experts' with a
monotone affine map fitted on that fold's training items (no model call: the baseline judged
every item once)::

    calibrated = clip(intercept + slope * score, scale.min, scale.max)      (slope >= 0)

The map is fitted under absolute error: for each slope on a grid (identity-like slopes first,
so that ties keep the judge's own spread) the best intercept is the median residual. It is
applied only when maps fitted without some input groups beat the raw score on those groups
(inner grouped folds over the training items); otherwise the raw score passes unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from judgealign.data.folds import inner_group_folds
from judgealign.rubric.model import Scale

MIN_CALIBRATION_LABELS = 8  # two parameters from fewer labels are noise
INNER_FOLDS = 5
# Slopes tried, identity-like first so that ties keep the judge's own spread.
SLOPES = np.array(sorted(np.round(np.arange(0.0, 4.0001, 0.05), 4), key=lambda b: abs(b - 1.0)))


@dataclass(frozen=True)
class AffineCalibration:
    """One fitted map, with the training MAEs that decided whether it is applied.

    >>> c = AffineCalibration(intercept=-1.0, slope=1.0, applied=True, low=1, high=5, n=12)
    >>> c.apply(4.0), c.apply(1.5)  # clipped to the scale
    (3.0, 1.0)
    >>> AffineCalibration(intercept=-1.0, slope=1.0, applied=False, low=1, high=5).apply(4.0)
    4.0
    """

    intercept: float
    slope: float
    applied: bool  # False: the map did not survive held-out groups; scores pass unchanged
    low: float
    high: float
    n: int = 0  # applicable (score, expert) points it was fitted on
    mae: float | None = None  # training MAE of the map
    mae_raw: float | None = None  # training MAE of the judge's own scores
    mae_heldout: float | None = None  # MAE of maps fitted without each inner fold's groups

    def apply(self, score: float) -> float:
        if not self.applied:
            return score
        return float(np.clip(self.intercept + self.slope * score, self.low, self.high))


def fit_calibration(
    points: Sequence[tuple[str, float, float]],
    groups: Mapping[str, str],
    scale: Scale,
    *,
    seed: int = 0,
) -> AffineCalibration:
    """Fit the map on ``(item id, judge score, expert score)`` points.

    Points where either score is N/A are dropped. ``groups`` maps ids to input groups for the
    held-out check (an id without one is its own group). With fewer than
    ``MIN_CALIBRATION_LABELS`` points the result is the identity, not applied.

    >>> scale = Scale(min=1, max=5, anchors={n: f"level {n}" for n in range(1, 6)})
    >>> pts = [(f"l{n}", float(s), float(s) - 1) for n, s in enumerate([2, 3, 4, 5] * 3)]
    >>> c = fit_calibration(pts, {p[0]: p[0] for p in pts}, scale)
    >>> (c.intercept, c.slope, c.applied)
    (-1.0, 1.0, True)
    """
    kept = sorted(
        (p for p in points if not scale.is_na(p[1]) and not scale.is_na(p[2])),
        key=lambda p: p[0],
    )
    low, high = float(scale.min), float(scale.max)
    if len(kept) < MIN_CALIBRATION_LABELS:
        return AffineCalibration(intercept=0.0, slope=1.0, applied=False, low=low, high=high)
    s = np.array([p[1] for p in kept])
    y = np.array([p[2] for p in kept])
    intercept, slope = _fit(s, y, low, high)
    heldout = _heldout(s, y, [groups.get(p[0], p[0]) for p in kept], low, high, seed)
    mae_raw = float(np.abs(s - y).mean())
    return AffineCalibration(
        intercept=intercept,
        slope=slope,
        applied=heldout is not None and heldout < mae_raw,
        low=low,
        high=high,
        n=len(kept),
        mae=float(np.abs(np.clip(intercept + slope * s, low, high) - y).mean()),
        mae_raw=mae_raw,
        mae_heldout=heldout,
    )


def _fit(s: np.ndarray, y: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """(intercept, slope): the identity, unless a grid slope with its median-residual
    intercept has a strictly lower training MAE."""
    best = (1.0, 0.0, float(np.abs(np.clip(s, low, high) - y).mean()))
    for b in SLOPES:
        a = float(np.median(y - b * s))
        err = float(np.abs(np.clip(a + b * s, low, high) - y).mean())
        if round(err, 12) < round(best[2], 12):
            best = (float(b), a, err)
    return round(best[1], 6), float(best[0])


def _heldout(
    s: np.ndarray, y: np.ndarray, groups: Sequence[str], low: float, high: float, seed: int
) -> float | None:
    """MAE on each inner fold's points of the map fitted on the other folds (None: < 2 groups)."""
    folds = inner_group_folds(groups, INNER_FOLDS, seed)
    if folds is None:
        return None
    out = np.empty(len(y))
    for f in np.unique(folds):
        test = folds == f
        a, b = _fit(s[~test], y[~test], low, high)
        out[test] = np.clip(a + b * s[test], low, high)
    return float(np.abs(out - y).mean())
