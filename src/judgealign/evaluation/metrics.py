"""Agreement between one judge and expert labels on one rubric dimension.

Expert labels may be means of several raters (3.667 on a 1-5 scale); judge scores are levels.
Where a metric needs categories (exact agreement, kappa, confusion matrix) scores are rounded to
the nearest level, halves upwards (2.5 -> 3), never with banker's rounding.

>>> p = pair_scores({"a": 1.0, "b": 3.0, "c": 0.0}, {"a": 2.0, "b": 3.0, "c": 0.0}, na_value=0)
>>> m = compute_metrics(p, scale_min=1, scale_max=3, na_value=0)
>>> (m.mae, m.n_scored, m.na.both_na)
(0.5, 2, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, model_validator
from scipy import stats

from judgealign.errors import DataError
from judgealign.evaluation.reliability import (
    human_human_mae,
    krippendorff_alpha,
    rater_scores,
)

METRICS_SCHEMA_VERSION = 1

FloatArray = npt.NDArray[np.float64]

# NaN ("no data") is a legitimate metric value; "strings" makes it survive a JSON round trip.
_CONFIG = ConfigDict(frozen=True, ser_json_inf_nan="strings")


def round_to_level(scores: npt.ArrayLike) -> FloatArray:
    """Round scores to the nearest integer level, halves upwards (NaN stays NaN).

    >>> round_to_level([2.5, 3.667, 1.2]).tolist()
    [3.0, 4.0, 1.0]
    """
    return np.floor(np.asarray(scores, dtype=float) + 0.5)


class PairedScores(BaseModel):
    """Expert and judge scores of one dimension, aligned by item.

    ``expert`` and ``judge`` hold NaN wherever the score is N/A or the judgement failed; the
    masks say which. Build it with :func:`pair_scores`.
    """

    model_config = _CONFIG

    item_ids: tuple[str, ...]
    expert: tuple[float, ...]
    judge: tuple[float, ...]
    expert_na: tuple[bool, ...]
    judge_na: tuple[bool, ...]
    judge_failed: tuple[bool, ...]

    @model_validator(mode="after")
    def _check(self) -> PairedScores:
        n = len(self.item_ids)
        fields = (self.expert, self.judge, self.expert_na, self.judge_na, self.judge_failed)
        if any(len(f) != n for f in fields):
            raise ValueError("all PairedScores fields must have one entry per item")
        if len(set(self.item_ids)) != n:
            raise ValueError("PairedScores.item_ids must be unique")
        e_na, j_na, failed = (np.array(m, dtype=bool) for m in fields[2:])
        if np.any(np.isnan(self.expert_array) != e_na) or np.any(j_na & failed):
            raise ValueError("expert must be NaN exactly where N/A; judge not both N/A and failed")
        if np.any(np.isnan(self.judge_array) != (j_na | failed)):
            raise ValueError("judge must be NaN exactly where N/A or failed")
        return self

    @property
    def expert_array(self) -> FloatArray:
        return np.array(self.expert, dtype=float)

    @property
    def judge_array(self) -> FloatArray:
        return np.array(self.judge, dtype=float)

    @property
    def failed_mask(self) -> npt.NDArray[np.bool_]:
        return np.array(self.judge_failed, dtype=bool)

    def scored(self) -> tuple[FloatArray, FloatArray]:
        """(expert, judge) where both give an applicable score and the judgement did not fail."""
        e, j = self.expert_array, self.judge_array
        mask = ~np.isnan(e) & ~np.isnan(j)
        return e[mask], j[mask]


def pair_scores(
    expert: Mapping[str, float | None],
    judge: Mapping[str, float | None],
    na_value: float | None = None,
) -> PairedScores:
    """Align expert labels and judge scores of one dimension by item id.

    Items come from ``expert`` (in its order); judge entries for unlabelled items are ignored.
    Expert ``None``/NaN or ``na_value`` is N/A; judge ``na_value`` is N/A, while a judge
    ``None``/NaN or an item missing from ``judge`` is a failed judgement.

    >>> p = pair_scores({"a": 2.0, "b": 0.0}, {"a": None, "b": 0.0}, na_value=0)
    >>> (p.judge_failed, p.expert_na, p.judge_na)
    ((True, False), (False, True), (False, True))
    """
    ids = tuple(expert)
    e = np.array([math.nan if (v := expert[i]) is None else v for i in ids], dtype=float)
    j = np.array([math.nan if (v := judge.get(i)) is None else v for i in ids], dtype=float)
    e_na = np.isnan(e) | (e == na_value)  # comparing with None is all False
    failed = np.isnan(j)
    j_na = ~failed & (j == na_value)
    e[e_na], j[j_na] = math.nan, math.nan
    return PairedScores(
        item_ids=ids,
        expert=tuple(e.tolist()),
        judge=tuple(j.tolist()),
        expert_na=tuple(e_na.tolist()),
        judge_na=tuple(j_na.tolist()),
        judge_failed=tuple(failed.tolist()),
    )


def _mean_or_nan(values: FloatArray) -> float:
    return float(values.mean()) if values.size else math.nan


def mae(paired: PairedScores) -> float:
    """Mean absolute error over the scored items (NaN when there are none)."""
    e, j = paired.scored()
    return _mean_or_nan(np.abs(j - e))


def mean_signed_error(paired: PairedScores) -> float:
    """Mean of judge - expert over the scored items; positive means a lenient judge."""
    e, j = paired.scored()
    return _mean_or_nan(j - e)


def agreement(paired: PairedScores, within: int = 0) -> float:
    """Share of scored items whose levels (expert rounded) differ by at most ``within``.

    ``within=0`` is exact agreement, ``within=1`` the within-one agreement.
    """
    e, j = paired.scored()
    return _mean_or_nan((np.abs(round_to_level(e) - round_to_level(j)) <= within).astype(float))


class NACounts(BaseModel):
    """How expert and judge agree on applicability; failed judgements are counted apart."""

    model_config = _CONFIG

    both_na: int
    expert_na_only: int
    judge_na_only: int
    both_applicable: int
    failed: int
    # Share of non-failed items where both agree whether the dimension applies.
    na_agreement: float


def na_counts(paired: PairedScores) -> NACounts:
    """Count N/A agreement over the non-failed judgements."""
    ok = ~paired.failed_mask
    e_na, j_na = (np.array(m, dtype=bool)[ok] for m in (paired.expert_na, paired.judge_na))
    both_na, both_app, total = int(np.sum(e_na & j_na)), int(np.sum(~e_na & ~j_na)), int(ok.sum())
    return NACounts(
        both_na=both_na,
        expert_na_only=int(np.sum(e_na & ~j_na)),
        judge_na_only=int(np.sum(~e_na & j_na)),
        both_applicable=both_app,
        failed=int(paired.failed_mask.sum()),
        na_agreement=(both_na + both_app) / total if total else math.nan,
    )


def quadratic_weighted_kappa(
    expert: npt.ArrayLike, judge: npt.ArrayLike, scale_min: int, scale_max: int
) -> float:
    """Cohen's kappa with quadratic weights; scores are rounded to levels and clipped to the scale.

    NaN when there are no pairs or when chance disagreement is zero (e.g. both constant).

    >>> quadratic_weighted_kappa([1, 2, 3], [1, 2, 3], 1, 3)
    1.0
    """
    e = np.clip(round_to_level(expert), scale_min, scale_max).astype(int) - scale_min
    j = np.clip(round_to_level(judge), scale_min, scale_max).astype(int) - scale_min
    if e.shape != j.shape or e.ndim != 1:
        raise DataError("quadratic_weighted_kappa needs two 1-d arrays of equal length")
    k = scale_max - scale_min + 1
    if e.size == 0:
        return math.nan
    observed = np.zeros((k, k))
    np.add.at(observed, (e, j), 1.0)
    expected = np.outer(observed.sum(1), observed.sum(0)) / e.size
    levels = np.arange(k)
    weights = (levels[:, None] - levels[None, :]) ** 2 / (k - 1) ** 2
    chance = float((weights * expected).sum())
    if chance == 0.0:
        return math.nan
    return 1.0 - float((weights * observed).sum()) / chance


def spearman(x: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Spearman's rho over pairs where both are finite; NaN when either side is constant."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    # Checked here so scipy never emits a ConstantInputWarning.
    if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
        return math.nan
    return float(stats.spearmanr(a, b).statistic)


class ConfusionMatrix(BaseModel):
    """Counts, rows = expert, columns = judge; ``levels`` starts with ``na_value`` if any."""

    model_config = _CONFIG

    levels: tuple[int, ...]
    na_value: int | None
    counts: tuple[tuple[int, ...], ...]

    @property
    def labels(self) -> list[str]:
        """Axis labels for display, e.g. ["N/A", "1", "2", "3"]."""
        return ["N/A" if lv == self.na_value else str(lv) for lv in self.levels]


def confusion_matrix(
    paired: PairedScores, scale_min: int, scale_max: int, na_value: int | None = None
) -> ConfusionMatrix:
    """Expert (rounded to a level) by judge counts, with an N/A row and column if the scale has one.

    Without ``na_value`` on the scale, N/A items are left out.
    """
    has_na = na_value is not None
    levels = ((na_value,) if na_value is not None else ()) + tuple(range(scale_min, scale_max + 1))
    ok = ~paired.failed_mask
    if not has_na:
        ok &= ~np.array(paired.expert_na, dtype=bool) & ~np.array(paired.judge_na, dtype=bool)

    def index(scores: FloatArray) -> npt.NDArray[np.int64]:
        idx = np.clip(round_to_level(np.nan_to_num(scores, nan=scale_min)), scale_min, scale_max)
        return np.where(np.isnan(scores), 0, idx - scale_min + has_na).astype(np.int64)

    counts = np.zeros((len(levels), len(levels)), dtype=np.int64)
    np.add.at(counts, (index(paired.expert_array[ok]), index(paired.judge_array[ok])), 1)
    return ConfusionMatrix(
        levels=levels,
        na_value=na_value,
        counts=tuple(tuple(int(c) for c in row) for row in counts),
    )


def constant_predictor_mae(expert: npt.ArrayLike, value: float) -> float:
    """MAE of always predicting ``value`` (NaN experts skipped): a baseline to beat.

    Pass the training-fold median as ``value`` for an honest out-of-sample baseline.

    >>> constant_predictor_mae([1, 2, 3, float("nan")], 2)
    0.6666666666666666
    """
    e = np.asarray(expert, dtype=float)
    return _mean_or_nan(np.abs(e[~np.isnan(e)] - value))


def median_predictor_mae(expert: npt.ArrayLike) -> float:
    """MAE of the experts' own median: the best constant, in sample, hence slightly optimistic."""
    e = np.asarray(expert, dtype=float)
    e = e[~np.isnan(e)]
    return constant_predictor_mae(e, float(np.median(e))) if e.size else math.nan


class DimensionMetrics(BaseModel):
    """Every agreement statistic of one judge on one dimension (NaN where undefined)."""

    model_config = _CONFIG

    schema_version: int = METRICS_SCHEMA_VERSION
    n_items: int
    n_scored: int
    n_failed: int
    mae: float
    mean_signed_error: float
    exact_agreement: float
    within_one_agreement: float
    quadratic_weighted_kappa: float
    spearman: float
    krippendorff_alpha_interval: float
    krippendorff_alpha_ordinal: float
    na: NACounts
    confusion: ConfusionMatrix
    # Median of the scored experts, predicted on the same scored items as ``mae``.
    baseline_median_mae: float
    human_mae_leave_one_out: float = math.nan
    human_mae_pairwise: float = math.nan
    human_n_items: int = 0


def compute_metrics(
    paired: PairedScores,
    scale_min: int,
    scale_max: int,
    na_value: int | None = None,
    *,
    ratings: Mapping[str, Mapping[str, float | None]] | None = None,
) -> DimensionMetrics:
    """All metrics of one dimension (example in the module docstring).

    ``ratings`` (item -> rater -> score, several experts) adds the human-human MAE.
    """
    e, j = paired.scored()
    reliability, rated = np.vstack([e, j]), ratings or {}
    return DimensionMetrics(
        n_items=len(paired.item_ids),
        n_scored=int(e.size),
        n_failed=int(paired.failed_mask.sum()),
        mae=mae(paired),
        mean_signed_error=mean_signed_error(paired),
        exact_agreement=agreement(paired, within=0),
        within_one_agreement=agreement(paired, within=1),
        quadratic_weighted_kappa=quadratic_weighted_kappa(e, j, scale_min, scale_max),
        spearman=spearman(e, j),
        krippendorff_alpha_interval=krippendorff_alpha(reliability, "interval"),
        krippendorff_alpha_ordinal=krippendorff_alpha(reliability, "ordinal"),
        na=na_counts(paired),
        confusion=confusion_matrix(paired, scale_min, scale_max, na_value),
        baseline_median_mae=median_predictor_mae(e),
        human_mae_leave_one_out=human_human_mae(rated, na_value, "leave_one_out"),
        human_mae_pairwise=human_human_mae(rated, na_value, "pairwise"),
        human_n_items=len(rater_scores(rated, na_value)),
    )
