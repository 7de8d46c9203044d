"""Agreement metrics against hand-worked cases and published values."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from judgealign.errors import DataError
from judgealign.evaluation.metrics import (
    DimensionMetrics,
    PairedScores,
    agreement,
    compute_metrics,
    confusion_matrix,
    constant_predictor_mae,
    mae,
    mean_signed_error,
    median_predictor_mae,
    na_counts,
    pair_scores,
    quadratic_weighted_kappa,
    round_to_level,
    spearman,
)
from judgealign.evaluation.reliability import human_human_mae, krippendorff_alpha

NAN = math.nan

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# 4 observers x 12 units, values 1-5, missing data.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]


@pytest.fixture
def paired() -> PairedScores:
    # 1-3 scale, 0 = N/A.
    expert = {
        "a": 1.0,
        "b": 2.0,
        "c": 3.0,
        "d": 2.667,  # rounds to 3
        "e": 0.0,  # expert N/A
        "f": 0.0,  # expert N/A
        "g": 2.0,
        "h": 3.0,
        "i": None,  # expert N/A given as None
    }
    judge = {
        "a": 2.0,  # +1
        "b": 2.0,  # 0
        "c": 1.0,  # -2
        "d": 3.0,  # +0.333
        "e": 0.0,  # both N/A
        "f": 2.0,  # judge applicable, expert N/A
        "g": 0.0,  # judge N/A, expert applicable
        "h": None,  # failed
        # "i" missing -> failed
        "zz": 3.0,  # unlabelled item: ignored
    }
    return pair_scores(expert, judge, na_value=0)


def test_pair_scores_masks(paired: PairedScores) -> None:
    assert paired.item_ids == ("a", "b", "c", "d", "e", "f", "g", "h", "i")
    assert paired.expert_na == (False, False, False, False, True, True, False, False, True)
    assert paired.judge_na == (False, False, False, False, True, False, True, False, False)
    assert paired.judge_failed == (False,) * 7 + (True, True)
    e, j = paired.scored()
    assert e.tolist() == [1.0, 2.0, 3.0, 2.667]
    assert j.tolist() == [2.0, 2.0, 1.0, 3.0]


def test_pair_scores_without_na_value_treats_zero_as_score() -> None:
    p = pair_scores({"a": 0.0, "b": None}, {"a": 0.0, "b": 1.0}, na_value=None)
    assert p.expert_na == (False, True)
    assert p.judge_na == (False, False)
    assert mae(p) == 0.0


def test_paired_scores_rejects_inconsistent_masks() -> None:
    with pytest.raises(ValidationError):
        PairedScores(
            item_ids=("a",),
            expert=(1.0,),
            judge=(NAN,),
            expert_na=(False,),
            judge_na=(False,),
            judge_failed=(False,),
        )
    with pytest.raises(ValidationError):
        PairedScores(
            item_ids=("a", "a"),
            expert=(1.0, 1.0),
            judge=(1.0, 1.0),
            expert_na=(False, False),
            judge_na=(False, False),
            judge_failed=(False, False),
        )


def test_mae_and_signed_error(paired: PairedScores) -> None:
    # |+1| + 0 + |-2| + 0.333 over 4 scored items.
    assert mae(paired) == pytest.approx((1 + 0 + 2 + 0.333) / 4)
    assert mean_signed_error(paired) == pytest.approx((1 + 0 - 2 + 0.333) / 4)


def test_agreement_rounds_expert_means(paired: PairedScores) -> None:
    # Levels: expert 1,2,3,3 vs judge 2,2,1,3 -> exact 2/4; within one: 3/4.
    assert agreement(paired, within=0) == 0.5
    assert agreement(paired, within=1) == 0.75
    assert round_to_level([2.5, 1.5, 1.49, NAN]).tolist()[:3] == [3.0, 2.0, 1.0]


def test_na_counts(paired: PairedScores) -> None:
    na = na_counts(paired)
    assert (na.both_na, na.expert_na_only, na.judge_na_only, na.both_applicable) == (1, 1, 1, 4)
    assert na.failed == 2
    assert na.na_agreement == pytest.approx(5 / 7)


def test_empty_metrics_are_nan() -> None:
    p = pair_scores({"a": 0.0}, {"a": 0.0}, na_value=0)
    assert math.isnan(mae(p))
    assert math.isnan(mean_signed_error(p))
    assert math.isnan(agreement(p))
    assert na_counts(p).na_agreement == 1.0


def test_qwk_hand_example() -> None:
    # expert 1,2,3,3 / judge 1,3,3,2 on 1-3. Observed weighted disagreement (w = d^2/4):
    # pairs (2,3),(3,2) -> 2 * 1/4 = 0.5. Marginals: expert {1:1,2:1,3:2}, judge {1:1,2:1,3:2};
    # expected E_ij = r_i c_j / 4; sum w E = [1*1*1/4 + 1*2*4/4 + 1*1*1/4 + 1*2*1/4
    # + 2*1*4/4 + 2*1*1/4] / 4 = (0.25+2+0.25+0.5+2+0.5)/4 = 5.5/4 -> kappa = 1 - 0.5/1.375.
    got = quadratic_weighted_kappa([1, 2, 3, 3], [1, 3, 3, 2], 1, 3)
    assert got == pytest.approx(1 - 0.5 / 1.375)


def test_qwk_matches_moment_identity() -> None:
    # With quadratic weights, kappa = 1 - mean (x-y)^2 / mean over all i,j of (x_i - y_j)^2.
    rng = np.random.default_rng(3)
    x, y = rng.integers(1, 6, 40), rng.integers(1, 6, 40)
    expected = 1 - np.mean((x - y) ** 2) / np.mean((x[:, None] - y[None, :]) ** 2)
    assert quadratic_weighted_kappa(x, y, 1, 5) == pytest.approx(expected)


def test_qwk_perfect_and_degenerate() -> None:
    assert quadratic_weighted_kappa([1, 2, 3], [1, 2, 3], 1, 3) == 1.0
    assert quadratic_weighted_kappa([1, 1, 2, 2], [1, 2, 1, 2], 1, 3) == pytest.approx(0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(quadratic_weighted_kappa([2, 2, 2], [2, 2, 2], 1, 3))
        assert math.isnan(quadratic_weighted_kappa([], [], 1, 3))


def test_spearman_matches_scipy_and_constant_is_nan() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(spearman([1, 2, 3], [2, 2, 2]))
        assert math.isnan(spearman([1], [2]))
    assert spearman([1, 2, NAN, 3], [1, 2, 5, 3]) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("metric", "expected"),
    [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)],
)
def test_krippendorff_published_example(metric: str, expected: float) -> None:
    alpha = krippendorff_alpha(KRIPPENDORFF_2011, metric)  # type: ignore[arg-type]
    assert alpha == pytest.approx(expected, abs=5e-4)


def test_krippendorff_binary_example() -> None:
    # Krippendorff (2011), section A: two observers, ten units, binary data -> alpha = 0.095.
    data = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.095, abs=5e-4)


def test_krippendorff_edge_cases() -> None:
    assert krippendorff_alpha([[1, 2, 3], [1, 2, 3]]) == 1.0
    assert math.isnan(krippendorff_alpha([[2, 2], [2, 2]]))
    assert math.isnan(krippendorff_alpha([[1, NAN], [NAN, 2]]))
    with pytest.raises(DataError):
        krippendorff_alpha([1, 2, 3])
    with pytest.raises(DataError):
        krippendorff_alpha([[1, 2], [1, 3]], "cosine")  # type: ignore[arg-type]


def test_confusion_matrix_with_na(paired: PairedScores) -> None:
    cm = confusion_matrix(paired, 1, 3, na_value=0)
    assert cm.levels == (0, 1, 2, 3)
    assert cm.labels == ["N/A", "1", "2", "3"]
    # rows expert, cols judge; failed items h, i excluded.
    assert cm.counts == (
        (1, 0, 1, 0),  # e: N/A->N/A, f: N/A->2
        (0, 0, 1, 0),  # a: 1->2
        (1, 0, 1, 0),  # g: 2->N/A, b: 2->2
        (0, 1, 0, 1),  # c: 3->1, d: 2.667->3
    )


def test_confusion_matrix_without_na() -> None:
    p = pair_scores({"a": 1.0, "b": 2.0, "c": None}, {"a": 2.0, "b": 2.0, "c": 1.0})
    cm = confusion_matrix(p, 1, 2)
    assert cm.levels == (1, 2)
    assert cm.counts == ((0, 1), (0, 1))


def test_human_human_mae() -> None:
    ratings: dict[str, dict[str, float | None]] = {
        # three raters: leave-one-out |1-2.5| + |3-1.5| + |2-2| = 3 -> 1.0;
        # pairwise |1-3| + |1-2| + |3-2| = 4 / 3.
        "x": {"ann": 1.0, "bob": 3.0, "cy": 2.0},
        # two raters (one N/A dropped): both variants give |2-4| = 2.
        "y": {"ann": 2.0, "bob": 4.0, "cy": 0.0},
        # a single applicable rating: skipped.
        "z": {"ann": 2.0, "bob": None},
    }
    assert human_human_mae(ratings, na_value=0) == pytest.approx((1.0 + 2.0) / 2)
    assert human_human_mae(ratings, na_value=0, method="pairwise") == pytest.approx(
        (4 / 3 + 2.0) / 2
    )
    assert math.isnan(human_human_mae({"z": {"ann": 2.0}}))
    with pytest.raises(DataError):
        human_human_mae(ratings, method="median")  # type: ignore[arg-type]


def test_constant_baselines() -> None:
    assert constant_predictor_mae([1, 2, 3, NAN], 2) == pytest.approx(2 / 3)
    assert median_predictor_mae([1, 1, 3, NAN]) == pytest.approx(2 / 3)
    assert math.isnan(median_predictor_mae([NAN]))


def test_compute_metrics_bundle_and_json_round_trip(paired: PairedScores) -> None:
    ratings = {"a": {"ann": 1.0, "bob": 2.0}}
    m = compute_metrics(paired, 1, 3, na_value=0, ratings=ratings)
    assert (m.n_items, m.n_scored, m.n_failed) == (9, 4, 2)
    assert m.mae == pytest.approx(mae(paired))
    assert (m.exact_agreement, m.within_one_agreement) == (0.5, 0.75)
    e, j = paired.scored()
    assert m.quadratic_weighted_kappa == pytest.approx(quadratic_weighted_kappa(e, j, 1, 3))
    assert m.krippendorff_alpha_interval == pytest.approx(krippendorff_alpha([e, j]))
    assert m.baseline_median_mae == pytest.approx(median_predictor_mae(e))
    assert (m.human_mae_leave_one_out, m.human_mae_pairwise, m.human_n_items) == (1.0, 1.0, 1)
    back = DimensionMetrics.model_validate_json(m.model_dump_json())
    assert back.model_dump_json() == m.model_dump_json()


def test_compute_metrics_without_scored_items_has_nan_not_errors() -> None:
    p = pair_scores({"a": 2.0}, {"a": None}, na_value=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = compute_metrics(p, 1, 3, na_value=0)
    assert m.n_failed == 1
    assert math.isnan(m.mae) and math.isnan(m.spearman) and math.isnan(m.human_mae_pairwise)
    back = DimensionMetrics.model_validate_json(m.model_dump_json())
    assert math.isnan(back.quadratic_weighted_kappa)
