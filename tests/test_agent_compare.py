"""The version comparison's statistics against values computed by hand.

Seven cases, three dimensions (table below, "x": no notebook, "-": N/A). model_use moves by
exactly +1 on every pair, so every bootstrap resample gives +1: the interval is [1, 1] and no
resample is as extreme under the null (the smallest p the test gives). data_imputation pairs
are identical: delta 0 and p = 1. Every dimension is paired by case and notebook number, and
its test must equal the paired bootstrap on the pairs written out by hand here; Holm's
adjustment is applied by hand to the p-values.

    case  notebooks  model_training  data_imputation  model_use
    c1    2          1,2 -> 3,2      1,- -> 1,3       2,2 -> 3,3
    c2    1          1 -> 3          1 -> 1           2 -> 3
    c3    1          3 -> 3          - -> -           2 -> 3
    c4    1          2 -> 1          2 -> 2           2 -> 3
    c5    1          x -> 3          x -> 2           x -> 3     (fixed failure)
    c6    1          2 -> x          2 -> x           2 -> x     (new failure)
    c7    1          3 -> 1          - -> -           2 -> 3
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

import judgealign as ja
from judgealign.agent.board import (
    NotebookResult,
    ScoreboardModel,
    SuiteInfo,
    case_summaries,
    dimension_summaries,
)
from judgealign.agent.comparison import compare_scoreboards
from judgealign.agent.suite import AgentCase
from judgealign.errors import DataError
from judgealign.evaluation.bootstrap import holm_correction, paired_bootstrap
from judgealign.judge.judgement import Judgement

DIMS = ("model_training", "data_imputation", "model_use")
B = 999
NA = 0
X = None  # no notebook
A_SCORES: dict[str, list[tuple[int, int, int] | None]] = {
    "c1": [(1, 1, 2), (2, NA, 2)],
    "c2": [(1, 1, 2)],
    "c3": [(3, NA, 2)],
    "c4": [(2, 2, 2)],
    "c5": [X],
    "c6": [(2, 2, 2)],
    "c7": [(3, NA, 2)],
}
B_SCORES: dict[str, list[tuple[int, int, int] | None]] = {
    "c1": [(3, 1, 3), (2, 3, 3)],
    "c2": [(3, 1, 3)],
    "c3": [(3, NA, 3)],
    "c4": [(1, 2, 3)],
    "c5": [(3, 2, 3)],
    "c6": [X],
    "c7": [(1, NA, 3)],
}


def board(version: str, scores: dict[str, list[tuple[int, int, int] | None]]) -> Any:
    rubric = ja.load_rubric("ml-notebook").subset(list(DIMS))
    cases = [
        AgentCase(id=c, prompt="p", task="regression", dataset={"name": "x"}, notebooks=len(nbs))
        for c, nbs in scores.items()
    ]
    notebooks = []
    for case, nbs in scores.items():
        for index, row in enumerate(nbs, 1):
            if row is None:
                notebooks.append(
                    NotebookResult(
                        case=case, index=index, status="failed", failure="crash", reason="boom"
                    )
                )
                continue
            js = tuple(
                Judgement(item=f"{case}/{index}", dimension=d, score=float(s), rationale="r")
                for d, s in zip(DIMS, row, strict=True)
            )
            notebooks.append(NotebookResult(case=case, index=index, status="ok", judgements=js))
    dims_of = {c.id: DIMS for c in cases}
    return ScoreboardModel(
        version=version,
        agent=version,
        suite=SuiteInfo(name="hand", digest="d"),
        rubric=rubric,
        dimensions=DIMS,
        cases_total=len(cases),
        cases_failed=1,
        notebooks_total=len(notebooks),
        notebooks_failed=1,
        dims=tuple(dimension_summaries(notebooks, rubric, DIMS, n_resamples=B, seed=0)),
        cases=tuple(case_summaries(cases, notebooks, rubric, dims_of)),
        notebooks=tuple(notebooks),
    )


@pytest.fixture(scope="module")
def cmp() -> Any:
    return compare_scoreboards(board("v1", A_SCORES), board("v2", B_SCORES), n_resamples=B)


# The pairs by hand: c1#1, c1#2, c2, c3, c4, c7 (c5 and c6 failed in one version).
GROUPS = ["c1", "c1", "c2", "c3", "c4", "c7"]


def test_constant_improvement_has_the_smallest_p_and_a_point_interval(cmp: Any) -> None:
    mu = cmp.dimension("model_use")
    assert mu.test.delta == 1.0 and (mu.test.low, mu.test.high) == (1.0, 1.0)
    assert (mu.test.mean_a, mu.test.mean_b, mu.test.n, mu.test.n_groups) == (2.0, 3.0, 6, 5)
    expected = paired_bootstrap([2] * 6, [3] * 6, n_resamples=B, seed=0, groups=GROUPS)
    assert mu.test.p_value == expected.p_value
    assert mu.test.p_value < cmp.dimension("model_training").test.p_value
    assert mu.cases == 5
    assert mu.better == ("b" if mu.p_holm < 0.05 else None)


def test_identical_pairs_give_p_one_and_na_pairs_are_left_out(cmp: Any) -> None:
    di = cmp.dimension("data_imputation")
    assert di.test.delta == 0.0 and di.test.p_value == pytest.approx(1.0)
    assert (di.test.n, di.test.n_groups, di.cases) == (3, 3, 3)  # c1#1, c2, c4
    assert di.better is None


def test_model_training_is_the_paired_bootstrap_over_case_clusters(cmp: Any) -> None:
    mt = cmp.dimension("model_training")
    a = [1, 2, 1, 3, 2, 3]
    b = [3, 2, 3, 3, 1, 1]
    expected = paired_bootstrap(a, b, n_resamples=B, seed=0, groups=GROUPS)
    assert mt.test.delta == pytest.approx(1 / 6)
    assert (mt.test.mean_a, mt.test.mean_b) == pytest.approx((2.0, 13 / 6))
    assert mt.test.p_value == expected.p_value
    assert (mt.test.low, mt.test.high) == (expected.low, expected.high)
    assert mt.test.unit == "cluster" and mt.test.n_groups == 5


def test_holm_correction_across_dimensions_by_hand(cmp: Any) -> None:
    p_mt = cmp.dimension("model_training").test.p_value
    p_mu = cmp.dimension("model_use").test.p_value
    p_di = cmp.dimension("data_imputation").test.p_value
    assert p_mu < p_mt < p_di  # the order Holm's step-down walks
    holm_mu = min(1.0, 3 * p_mu)
    holm_mt = max(holm_mu, min(1.0, 2 * p_mt))
    holm_di = max(holm_mt, min(1.0, p_di))
    assert cmp.dimension("model_use").p_holm == pytest.approx(holm_mu)
    assert cmp.dimension("model_training").p_holm == pytest.approx(holm_mt)
    assert cmp.dimension("data_imputation").p_holm == pytest.approx(holm_di)
    ps = {"model_training": p_mt, "data_imputation": p_di, "model_use": p_mu}
    assert holm_correction(ps)["model_training"] == pytest.approx(holm_mt)


def test_cases_that_got_better_or_worse_and_changed_failures(cmp: Any) -> None:
    improvement = {o.case: o.improvement for o in cmp.outcomes}
    # c1: (+1 model_training, +1 data_imputation, +1 model_use) / 3; c2: (2 + 0 + 1) / 3;
    # c3: (0 + 1) / 2 (data_imputation N/A on both sides); c4: (-1 + 0 + 1) / 3; c7: (-2 + 1) / 2
    assert improvement == pytest.approx({"c1": 1.0, "c2": 1.0, "c3": 0.5, "c4": 0.0, "c7": -0.5})
    assert cmp.better_cases == ["c1", "c2", "c3"] and cmp.worse_cases == ["c7"]
    c1 = next(o for o in cmp.outcomes if o.case == "c1")
    assert set(c1.better) == set(DIMS) and c1.worse == ()
    change = next(c for c in cmp.changes if c.case == "c1" and c.dimension == "data_imputation")
    assert (change.score_a, change.score_b, change.direction) == (1.0, 2.0, "better")
    assert [f.case for f in cmp.failures_fixed] == ["c5"]
    assert [f.case for f in cmp.failures_new] == ["c6"]
    assert cmp.failures_new[0].reason == "#1 crash: boom"
    assert cmp.cases_compared == 5


def test_the_scoreboard_mean_pools_notebooks_and_resamples_cases() -> None:
    a = board("v1", A_SCORES)
    mt = a.dimension("model_training")
    # c1 contributes two notebooks; c5 has none: (1 + 2 + 1 + 3 + 2 + 2 + 3) / 7
    assert mt.mean.estimate == pytest.approx(14 / 7)
    assert (mt.mean.n, mt.mean.n_groups, mt.cases) == (7, 6, 6)
    di = a.dimension("data_imputation")
    assert (di.na, di.judged) == (3, 7) and di.na_rate == pytest.approx(3 / 7)
    assert di.lowest == pytest.approx(2 / 4)  # scores 1, 1, 2, 2: half are the worst level
    assert a.case("c1").scores == {"model_training": 1.5, "data_imputation": 1.0, "model_use": 2.0}
    assert (
        a.case("c3").scores["data_imputation"] is None and a.case("c3").na["data_imputation"] == 1
    )


def test_different_suites_are_refused_and_versions_named_alike_noted() -> None:
    a = board("v1", A_SCORES)
    other = a.model_copy(update={"suite": SuiteInfo(name="else", digest="d")})
    with pytest.raises(DataError, match="different suites"):
        compare_scoreboards(a, other)
    same = compare_scoreboards(a, a, n_resamples=B)
    assert any("Both runs are filed as version" in n for n in same.notes)
    assert all(math.isclose(d.test.delta, 0.0) for d in same.dims)


def test_saved_scoreboards_and_comparisons_load_or_fail_in_one_line(
    cmp: Any, tmp_path: Path
) -> None:
    from judgealign.agent.comparison import ComparisonModel
    from judgealign.errors import DataError

    saved = cmp.save(tmp_path / "cmp" / "comparison.json")
    again = ComparisonModel.load(tmp_path / "cmp")  # a folder finds its comparison.json
    assert again == cmp
    cases = [
        ("", "unreadable agent comparison"),
        ('{"format": "other"}', "not a judgealign agent comparison"),
        ('{"format": "judgealign.agent.comparison", "schema_version": 99}', "newer than"),
        ('{"format": "judgealign.agent.comparison", "schema_version": 1}', "invalid agent"),
    ]
    for text, expected in cases:
        saved.write_text(text, encoding="utf-8")
        with pytest.raises(DataError) as err:
            ComparisonModel.load(saved)
        message = str(err.value)
        assert message.startswith(str(saved)) and expected in message and "\n" not in message
    with pytest.raises(DataError, match="no agent scoreboard; run `judgealign agent run"):
        ScoreboardModel.load(tmp_path / "missing")
