"""Score calibration: a monotone affine map of an aligned judge's score onto the experts'.

A judge can rank items well and still be off by a constant or a stretch (bench: a 1.5B judge
on CoNaLa ranks snippets with Spearman 0.50 yet scores +0.5 too high, so it loses to the
median expert score). The memory context moves such a judge's bias in ways no one predicts
(WMT: the aligned judge's bias is not the unaligned one's), so the map is fitted on the
*aligned* judge's own scores of the training items::

    calibrated = clip(intercept + slope * score, scale.min, scale.max)      (slope >= 0)

Each training item is scored with its own input group left out of retrieval, as a held-out
item would be (grouped folds), and (score, expert) pairs fit the map under absolute error:
for each slope on a grid the best intercept is the median residual. The map is applied only
when maps fitted without some groups beat the raw score on those groups (inner grouped
folds); otherwise it is kept as a diagnostic and the judge's score passes unchanged.

One weakness is known and accepted: the guidelines were distilled from every training label,
the scored one's included, so training scores are slightly better than held-out ones and the
map corrects a little less than it should.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from judgealign.data.folds import inner_group_folds
from judgealign.memory.records import Episode
from judgealign.rubric.model import Scale

CALIBRATION_SCHEMA_VERSION = 1
MIN_CALIBRATION_LABELS = 8  # two parameters from fewer labels are noise
INNER_FOLDS = 5
# Slopes tried, identity-like first so that ties keep the judge's own spread.
SLOPES = np.array(sorted(np.round(np.arange(0.0, 4.0001, 0.05), 4), key=lambda b: abs(b - 1.0)))


class ScoreCalibration(BaseModel):
    """One dimension's calibration of one judge variant, with the scores it was fitted on.

    >>> c = ScoreCalibration(intercept=-1.0, slope=1.0, applied=True, low=1, high=5,
    ...                      points=(("a", 2.0, 1.0),) , mae=0.0, mae_raw=1.0, mae_heldout=0.2)
    >>> c.apply(4.0), c.apply(1.5)  # clipped to the scale
    (3.0, 1.0)
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = CALIBRATION_SCHEMA_VERSION
    intercept: float
    slope: float = Field(ge=0.0)
    applied: bool  # False: the map did not survive held-out groups; scores pass unchanged
    low: float
    high: float
    # (label id, the aligned judge's leave-group-out score, the expert score): refitting
    # after more labels or a forget needs no new call for the labels already scored.
    points: tuple[tuple[str, float, float], ...] = ()
    mae: float | None = None  # training MAE of the map
    mae_raw: float | None = None  # training MAE of the judge's own scores
    mae_heldout: float | None = None  # MAE of maps fitted without each inner fold's groups

    @property
    def n_labels(self) -> int:
        return len(self.points)

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
) -> ScoreCalibration:
    """Fit the map on ``(label id, judge score, expert score)`` points (applicable ones).

    ``groups`` maps label ids to input groups for the held-out check. With fewer than
    ``MIN_CALIBRATION_LABELS`` points the calibration is the identity, not applied.

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
        # Kept (unapplied) for its points: more labels later refit it without re-scoring.
        return ScoreCalibration(
            intercept=0.0, slope=1.0, applied=False, low=low, high=high, points=tuple(kept)
        )
    s = np.array([p[1] for p in kept])
    y = np.array([p[2] for p in kept])
    intercept, slope = _fit(s, y, low, high)
    heldout = _heldout(s, y, [groups.get(p[0], p[0]) for p in kept], low, high, seed)
    mae_raw = float(np.abs(s - y).mean())
    return ScoreCalibration(
        intercept=intercept,
        slope=slope,
        applied=heldout is not None and heldout < mae_raw,
        low=low,
        high=high,
        points=tuple(kept),
        mae=float(np.abs(np.clip(intercept + slope * s, low, high) - y).mean()),
        mae_raw=mae_raw,
        mae_heldout=heldout,
    )


def calibration_points(
    episodes: Sequence[Episode], scores: Mapping[str, float | None]
) -> list[tuple[str, float, float]]:
    """Points for the labels among ``episodes`` that have a judge score in ``scores``."""
    return [(e.id, float(sc), e.score) for e in episodes if (sc := scores.get(e.id)) is not None]


def _fit(s: np.ndarray, y: np.ndarray, low: float, high: float) -> tuple[float, float]:
    # Candidates: the identity, then (median residual, slope) per grid slope.
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
    """MAE on each inner fold's labels of the map fitted on the other folds (None: < 2 groups)."""
    folds = inner_group_folds(groups, INNER_FOLDS, seed)
    if folds is None:
        return None
    out = np.empty(len(y))
    for f in np.unique(folds):
        test = folds == f
        a, b = _fit(s[~test], y[~test], low, high)
        out[test] = np.clip(a + b * s[test], low, high)
    return float(np.abs(out - y).mean())
