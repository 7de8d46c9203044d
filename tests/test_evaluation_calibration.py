"""The calibrated baseline's affine map: the fit, its held-out check, N/A and small samples."""

from __future__ import annotations

import numpy as np
import pytest

from judgealign.evaluation.calibration import (
    MIN_CALIBRATION_LABELS,
    AffineCalibration,
    fit_calibration,
)
from judgealign.rubric.model import Scale

SCALE = Scale(min=1, max=3, anchors={1: "bad", 2: "average", 3: "good"}, na_value=0)


def points(judge: list[float], expert: list[float]) -> list[tuple[str, float, float]]:
    return [(f"l{n:03d}", j, e) for n, (j, e) in enumerate(zip(judge, expert, strict=True))]


def own_groups(pts: list[tuple[str, float, float]]) -> dict[str, str]:
    return {p[0]: p[0] for p in pts}


def test_a_shifted_judge_is_shifted_back_and_clipped() -> None:
    pts = points([2.0, 3.0] * 8, [1.0, 2.0] * 8)  # one point too lenient, ranking right
    cal = fit_calibration(pts, own_groups(pts), SCALE)
    assert (cal.intercept, cal.slope, cal.applied) == (-1.0, 1.0, True)
    assert cal.mae == 0.0 and cal.mae_raw == 1.0 and cal.mae_heldout == 0.0
    assert cal.n == 16
    assert cal.apply(3.0) == 2.0 and cal.apply(1.0) == 1.0  # 0 clipped up to the scale


def test_a_compressed_judge_is_stretched() -> None:
    # The judge hedges around 2 (its scores move a third as much as the experts').
    rng = np.random.default_rng(0)
    expert = [float(x) for x in rng.integers(1, 4, 30)]
    judge = [2.0 + (e - 2.0) / 3 + float(rng.normal(0, 0.05)) for e in expert]
    pts = points(judge, expert)
    cal = fit_calibration(pts, own_groups(pts), SCALE)
    assert cal.applied and cal.slope > 2.5  # steeper is as good: the scale clips the ends
    assert cal.mae is not None and cal.mae_raw is not None and cal.mae < cal.mae_raw / 3


def test_an_uninformative_map_is_not_applied() -> None:
    # Whatever a map learns from noise, it is applied only if it beat the raw scores on
    # groups it was not fitted on.
    for seed in range(10):
        rng = np.random.default_rng(seed)
        pts = points(
            [float(x) for x in rng.integers(1, 4, 20)], [float(x) for x in rng.integers(1, 4, 20)]
        )
        cal = fit_calibration(pts, own_groups(pts), SCALE, seed=seed)
        assert cal.mae_heldout is not None and cal.mae_raw is not None
        assert cal.applied == (cal.mae_heldout < cal.mae_raw)
        if not cal.applied:
            assert cal.apply(2.7) == 2.7


def test_too_few_or_na_points_give_an_unapplied_identity() -> None:
    pts = points([2.0] * (MIN_CALIBRATION_LABELS - 1) + [0.0], [1.0] * MIN_CALIBRATION_LABELS)
    cal = fit_calibration(pts, own_groups(pts), SCALE)
    assert not cal.applied and (cal.intercept, cal.slope) == (0.0, 1.0)
    assert cal.mae is None and cal.mae_heldout is None
    assert cal.apply(2.0) == 2.0
    # An N/A expert score is no point either.
    na_expert = points([2.0] * MIN_CALIBRATION_LABELS, [1.0] * (MIN_CALIBRATION_LABELS - 1) + [0])
    assert not fit_calibration(na_expert, own_groups(na_expert), SCALE).applied


def test_one_group_cannot_be_held_out() -> None:
    pts = points([2.0, 3.0] * 8, [1.0, 2.0] * 8)
    cal = fit_calibration(pts, {p[0]: "g" for p in pts}, SCALE)
    assert cal.mae_heldout is None and not cal.applied
    assert (cal.intercept, cal.slope) == (-1.0, 1.0)  # fitted, kept as a diagnostic


def test_ids_missing_from_groups_are_their_own_group() -> None:
    pts = points([2.0, 3.0] * 8, [1.0, 2.0] * 8)
    assert fit_calibration(pts, {}, SCALE) == fit_calibration(pts, own_groups(pts), SCALE)


def test_the_fit_does_not_depend_on_point_order_and_the_seed_is_used() -> None:
    rng = np.random.default_rng(3)
    expert = [float(x) for x in rng.integers(1, 4, 24)]
    judge = [min(3.0, e + float(rng.integers(0, 2))) for e in expert]
    pts = points(judge, expert)
    groups = {p[0]: f"g{n // 3}" for n, p in enumerate(pts)}
    a = fit_calibration(pts, groups, SCALE, seed=1)
    assert fit_calibration(list(reversed(pts)), groups, SCALE, seed=1) == a
    heldouts = {fit_calibration(pts, groups, SCALE, seed=s).mae_heldout for s in range(8)}
    assert len(heldouts) > 1  # the inner folds follow the seed


def test_calibration_is_frozen() -> None:
    cal = AffineCalibration(intercept=0.0, slope=1.0, applied=False, low=1, high=3)
    with pytest.raises(AttributeError):
        cal.slope = 2.0  # type: ignore[misc]
