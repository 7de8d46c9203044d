"""Two agent versions on the same suite: what changed, and whether it is more than noise.

Per dimension the scores are paired case by case: notebook 1 of a case in version A with
notebook 1 of the same case in B, and so on (a pair missing an applicable score on either side
is left out). The change is mean(B - A) over the pairs, with the paired bootstrap's interval
and p-value resampling whole cases (a case's notebooks stay together), and Holm's correction
across dimensions. Per case the change in its mean score per dimension, and which cases got
better or worse overall (the mean of their per-dimension changes, signed so that positive is
better). Cases that failed in one version only are listed apart: they cannot be paired, and a
version should not look better for failing its hard cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from judgealign import __version__
from judgealign.agent.board import Gap, ScoreboardModel, applicable
from judgealign.agent.store import SavedDocument
from judgealign.errors import DataError
from judgealign.evaluation.bootstrap import PairedComparison, holm_correction, paired_bootstrap
from judgealign.rubric.model import Rubric

COMPARISON_FORMAT = "judgealign.agent.comparison"
COMPARISON_SCHEMA_VERSION = 1
ALPHA = 0.05
TOP_GAPS = 3

_CONFIG = ConfigDict(frozen=True, ser_json_inf_nan="strings")
Direction = Literal["better", "worse", "same"]


class DimensionComparison(BaseModel):
    """One dimension: B - A over paired notebooks (``test``), Holm-adjusted p, and which
    version is significantly better (``None``: neither, at ``alpha``)."""

    model_config = _CONFIG

    dimension: str
    lower_is_better: bool = False
    cases: int
    test: PairedComparison | None = None
    p_holm: float | None = None
    better: Literal["a", "b"] | None = None
    na_rate_a: float | None = None
    na_rate_b: float | None = None
    failed_a: int = 0
    failed_b: int = 0


class CaseChange(BaseModel):
    """A case's mean score on one dimension in both versions."""

    model_config = _CONFIG

    case: str
    dimension: str
    score_a: float
    score_b: float
    delta: float
    direction: Direction


class CaseOutcome(BaseModel):
    """A case overall: the mean of its signed per-dimension changes (positive: better)."""

    model_config = _CONFIG

    case: str
    improvement: float
    dimensions: int
    direction: Direction
    better: tuple[str, ...] = ()
    worse: tuple[str, ...] = ()


class FailureChange(BaseModel):
    model_config = _CONFIG

    case: str
    reason: str


class ComparisonModel(SavedDocument):
    """The comparison's data (``comparison.json``); see ``judgealign.AgentComparison``."""

    model_config = _CONFIG
    FILE_NAME: ClassVar[str] = "comparison.json"
    WHAT: ClassVar[str] = "agent comparison"
    MISSING_HINT: ClassVar[str] = "run `judgealign agent compare OLD NEW --out FOLDER` first"

    format: str = COMPARISON_FORMAT
    schema_version: int = COMPARISON_SCHEMA_VERSION
    judgealign_version: str = __version__
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    version_a: str
    version_b: str
    suite: str
    rubric: Rubric
    dimensions: tuple[str, ...]
    cases_compared: int
    dims: tuple[DimensionComparison, ...] = ()
    changes: tuple[CaseChange, ...] = ()
    outcomes: tuple[CaseOutcome, ...] = ()
    failures_fixed: tuple[FailureChange, ...] = ()
    failures_new: tuple[FailureChange, ...] = ()
    cases_failed_a: int = 0
    cases_failed_b: int = 0
    gaps_a: tuple[Gap, ...] = ()
    gaps_b: tuple[Gap, ...] = ()
    reports: dict[str, str] = Field(default_factory=dict)
    n_resamples: int = 10_000
    seed: int = 0
    alpha: float = ALPHA
    notes: tuple[str, ...] = ()

    def dimension(self, dimension: str) -> DimensionComparison:
        for d in self.dims:
            if d.dimension == dimension:
                return d
        raise DataError(f"the comparison has no dimension {dimension!r}")

    @property
    def better_cases(self) -> list[str]:
        return [o.case for o in self.outcomes if o.direction == "better"]

    @property
    def worse_cases(self) -> list[str]:
        return [o.case for o in self.outcomes if o.direction == "worse"]


def _signed(delta: float, lower_is_better: bool) -> float:
    return -delta if lower_is_better else delta


def _direction(improvement: float) -> Direction:
    if improvement > 1e-12:
        return "better"
    if improvement < -1e-12:
        return "worse"
    return "same"


def paired_scores(
    a: ScoreboardModel, b: ScoreboardModel, dimension: str, cases: Sequence[str]
) -> tuple[list[float], list[float], list[str]]:
    """Scores of A and B paired by (case, notebook number), NaN where one side has no
    applicable score, and the case of each pair (the resampling cluster)."""
    scale = a.rubric.dimension(dimension).scale
    by_a = {(nb.case, nb.index): nb for nb in a.notebooks}
    by_b = {(nb.case, nb.index): nb for nb in b.notebooks}

    def score(nb: Any) -> float:
        if nb is None or nb.status != "ok":
            return math.nan
        for j in nb.judgements:
            if j.dimension == dimension and applicable(j, scale):
                return float(j.score)
        return math.nan

    xs: list[float] = []
    ys: list[float] = []
    groups: list[str] = []
    for case in cases:
        count = max(
            sum(1 for key in by_a if key[0] == case), sum(1 for key in by_b if key[0] == case)
        )
        for index in range(1, count + 1):
            xs.append(score(by_a.get((case, index))))
            ys.append(score(by_b.get((case, index))))
            groups.append(case)
    return xs, ys, groups


def compare_scoreboards(
    a: ScoreboardModel,
    b: ScoreboardModel,
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    alpha: float = ALPHA,
) -> ComparisonModel:
    """Compare version ``a`` (before) with ``b`` (after) on the suite they both ran."""
    if a.suite.name != b.suite.name:
        raise DataError(
            f"the runs scored different suites ({a.suite.name!r} and {b.suite.name!r}); "
            "compare two versions on one suite"
        )
    if a.rubric.id != b.rubric.id:
        raise DataError(f"the runs used different rubrics ({a.rubric.id!r}, {b.rubric.id!r})")
    notes = []
    if a.suite.digest != b.suite.digest:
        notes.append(
            "The two runs' suites differ (cases or data changed); only cases in both are paired."
        )
    if a.version == b.version:
        notes.append(f"Both runs are filed as version {a.version!r}.")
    dims = [d for d in a.dimensions if d in b.dimensions]
    if not dims:
        raise DataError("the two runs share no dimension; score both with the same judges")
    if set(a.dimensions) ^ set(b.dimensions):
        notes.append("Only the dimensions both runs scored are compared: " + ", ".join(dims))
    case_a = {c.case: c for c in a.cases}
    case_b = {c.case: c for c in b.cases}
    shared = [c for c in case_a if c in case_b]
    both_ok = [c for c in shared if case_a[c].status != "failed" and case_b[c].status != "failed"]

    tests: dict[str, PairedComparison] = {}
    results: dict[str, dict[str, Any]] = {}
    for dim in dims:
        xs, ys, groups = paired_scores(a, b, dim, both_ok)
        test = paired_bootstrap(xs, ys, n_resamples=n_resamples, seed=seed, groups=groups)
        paired_cases = {
            g
            for g, x, y in zip(groups, xs, ys, strict=True)
            if not (math.isnan(x) or math.isnan(y))
        }
        results[dim] = {"cases": len(paired_cases), "test": test if test.n else None}
        if test.n and not math.isnan(test.p_value):
            tests[dim] = test
    holm = holm_correction({d: t.p_value for d, t in tests.items()})

    dim_rows = []
    for dim in dims:
        lower = a.rubric.dimension(dim).scale.lower_is_better
        test = results[dim]["test"]
        p = holm.get(dim)
        better: Literal["a", "b"] | None = None
        if test is not None and p is not None and p < alpha:
            better = "b" if _signed(test.delta, lower) > 0 else "a"
        da, db = a.dimension(dim), b.dimension(dim)
        dim_rows.append(
            DimensionComparison(
                dimension=dim,
                lower_is_better=lower,
                cases=results[dim]["cases"],
                test=test,
                p_holm=p,
                better=better,
                na_rate_a=da.na_rate,
                na_rate_b=db.na_rate,
                failed_a=da.failed,
                failed_b=db.failed,
            )
        )

    changes: list[CaseChange] = []
    outcomes: list[CaseOutcome] = []
    for case in both_ok:
        signed: dict[str, float] = {}
        for dim in dims:
            sa, sb = case_a[case].scores.get(dim), case_b[case].scores.get(dim)
            if sa is None or sb is None:
                continue
            lower = a.rubric.dimension(dim).scale.lower_is_better
            delta = sb - sa
            signed[dim] = _signed(delta, lower)
            changes.append(
                CaseChange(
                    case=case,
                    dimension=dim,
                    score_a=sa,
                    score_b=sb,
                    delta=delta,
                    direction=_direction(signed[dim]),
                )
            )
        if signed:
            mean = sum(signed.values()) / len(signed)
            outcomes.append(
                CaseOutcome(
                    case=case,
                    improvement=mean,
                    dimensions=len(signed),
                    direction=_direction(mean),
                    better=tuple(d for d, v in signed.items() if v > 1e-12),
                    worse=tuple(d for d, v in signed.items() if v < -1e-12),
                )
            )
    outcomes.sort(key=lambda o: -o.improvement)

    def reason(board: Any, case: str) -> str:
        return "; ".join(board.case(case).failures) or "no notebook"

    fixed = [
        FailureChange(case=c, reason=reason(a, c))
        for c in shared
        if case_a[c].status == "failed" and case_b[c].status != "failed"
    ]
    new = [
        FailureChange(case=c, reason=reason(b, c))
        for c in shared
        if case_b[c].status == "failed" and case_a[c].status != "failed"
    ]

    def top_gaps(board: ScoreboardModel) -> tuple[Gap, ...]:
        return tuple(g for d in dims for g in board.gaps_for(d)[:TOP_GAPS])

    return ComparisonModel(
        version_a=a.version,
        version_b=b.version,
        suite=a.suite.name,
        rubric=a.rubric.subset(dims),
        dimensions=tuple(dims),
        cases_compared=len(both_ok),
        dims=tuple(dim_rows),
        changes=tuple(changes),
        outcomes=tuple(outcomes),
        failures_fixed=tuple(fixed),
        failures_new=tuple(new),
        cases_failed_a=a.cases_failed,
        cases_failed_b=b.cases_failed,
        gaps_a=top_gaps(a),
        gaps_b=top_gaps(b),
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        notes=tuple(notes),
    )
