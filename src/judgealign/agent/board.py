"""The scoreboard of one agent version on a suite: the data and how its figures are computed.

Per dimension: the mean applicable score over notebooks with a cluster bootstrap interval
(test cases are resampled, a case's notebooks kept together: they share a prompt and data and
are not independent), the share of the scale's worst score, the N/A rate (N/A answers among
successful judgements) and failed judgements. Failed cases (no notebook at all) are counted
apart and never enter a mean: a version that fails the hard cases would otherwise look better
for it, so every view shows the failures beside the scores. Per case and per tag the same
means, without intervals.

The renderers (console, HTML, MLflow) live in their own modules and read this model; the
``Scoreboard`` users hold (``agent.views``) adds them as methods.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from judgealign import __version__
from judgealign.agent.execution import ExecutionResult
from judgealign.agent.records import Execution, Generation, ScoredJudgement, notebook_id
from judgealign.agent.store import SavedDocument
from judgealign.agent.suite import AgentCase
from judgealign.agent.task import FailureKind
from judgealign.errors import DataError
from judgealign.evaluation.bootstrap import ConfidenceInterval, bootstrap_ci
from judgealign.judge.judgement import Judgement
from judgealign.providers.types import Usage
from judgealign.rubric.model import Rubric, Scale

SCOREBOARD_FORMAT = "judgealign.agent.scoreboard"
SCOREBOARD_SCHEMA_VERSION = 1

_CONFIG = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class SuiteInfo(BaseModel):
    model_config = _CONFIG

    name: str
    digest: str
    source: str = ""
    cases: int = 0


class JudgeInfo(BaseModel):
    """A judge file the run scored with (its copy in the run folder)."""

    model_config = _CONFIG

    file: str
    sha256: str
    model: str
    embedder: str | None = None
    dimensions: tuple[str, ...]
    fitted: bool = False


class NotebookResult(BaseModel):
    """One notebook: how its generation (and execution) went, and its judgements."""

    model_config = _CONFIG

    case: str
    index: int
    status: Literal["ok", "failed"]
    failure: FailureKind | None = None
    reason: str = ""
    notebook: str | None = None
    executed: str | None = None
    execution: ExecutionResult | None = None
    seconds: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    judgements: tuple[Judgement, ...] = ()
    judges: dict[str, str] = Field(default_factory=dict)

    @property
    def id(self) -> str:
        return notebook_id(self.case, self.index)


class DimensionSummary(BaseModel):
    """One dimension over the whole suite (see the module docstring)."""

    model_config = _CONFIG

    dimension: str
    judged: int
    scored: int
    cases: int
    mean: ConfidenceInterval | None = None
    lowest: float | None = None
    worst_level: int
    na: int = 0
    na_rate: float | None = None
    failed: int = 0


class CaseSummary(BaseModel):
    """One case: its notebooks, failures and the mean applicable score per dimension
    (``None``: no applicable score; ``na`` counts N/A answers)."""

    model_config = _CONFIG

    case: str
    task: str
    tags: tuple[str, ...]
    status: Literal["ok", "partial", "failed"]
    notebooks: int
    generated: int
    failures: tuple[str, ...] = ()
    execution_errors: int = 0
    dimensions: tuple[str, ...] = ()
    scores: dict[str, float | None] = Field(default_factory=dict)
    na: dict[str, int] = Field(default_factory=dict)
    failed_judgements: int = 0


class TagSummary(BaseModel):
    """The cases carrying one tag (their task type counts as a tag)."""

    model_config = _CONFIG

    tag: str
    cases: int
    failed_cases: int
    scores: dict[str, float | None] = Field(default_factory=dict)
    n: dict[str, int] = Field(default_factory=dict)


class Gap(BaseModel):
    """A recurring reason for low scores on one dimension: the judge's rationales grouped by
    embedding similarity. ``reason`` is the group's most central rationale; ``examples`` are
    other wordings from it."""

    model_config = _CONFIG

    dimension: str
    reason: str
    count: int
    mean_score: float
    notebooks: tuple[str, ...]
    cases: tuple[str, ...]
    examples: tuple[str, ...] = ()


class GapSettings(BaseModel):
    model_config = _CONFIG

    thresholds: dict[str, float] = Field(default_factory=dict)
    similarity: float
    embedder: str | None = None


class ScoreboardModel(SavedDocument):
    """The scoreboard's data (``scoreboard.json``); see ``judgealign.Scoreboard``."""

    model_config = _CONFIG
    FILE_NAME: ClassVar[str] = "scoreboard.json"
    WHAT: ClassVar[str] = "agent scoreboard"
    MISSING_HINT: ClassVar[str] = "run `judgealign agent run ... --out FOLDER` first"

    format: str = SCOREBOARD_FORMAT
    schema_version: int = SCOREBOARD_SCHEMA_VERSION
    judgealign_version: str = __version__
    created: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    version: str
    agent: str
    suite: SuiteInfo
    rubric: Rubric
    dimensions: tuple[str, ...]
    judges: tuple[JudgeInfo, ...] = ()
    execute: bool = False
    cases_total: int
    cases_failed: int
    notebooks_total: int
    notebooks_failed: int
    failures: dict[str, int] = Field(default_factory=dict)
    execution_errors: int = 0
    dims: tuple[DimensionSummary, ...] = ()
    cases: tuple[CaseSummary, ...] = ()
    tags: tuple[TagSummary, ...] = ()
    notebooks: tuple[NotebookResult, ...] = ()
    gaps: tuple[Gap, ...] = ()
    gap_settings: GapSettings | None = None
    guidelines: dict[str, str] = Field(default_factory=dict)
    usage_generation: Usage = Field(default_factory=Usage)
    usage_scoring: Usage = Field(default_factory=Usage)
    wall_seconds: float = 0.0
    n_resamples: int = 10_000
    seed: int = 0
    confidence: float = 0.95
    notes: tuple[str, ...] = ()

    def dimension(self, dimension: str) -> DimensionSummary:
        for d in self.dims:
            if d.dimension == dimension:
                return d
        raise DataError(f"the scoreboard has no dimension {dimension!r}")

    def case(self, case: str) -> CaseSummary:
        for c in self.cases:
            if c.case == case:
                return c
        raise DataError(f"the scoreboard has no case {case!r}")

    def gaps_for(self, dimension: str) -> list[Gap]:
        return [g for g in self.gaps if g.dimension == dimension]


# -- computing it ---------------------------------------------------------------------------
def worst_level(scale: Scale) -> int:
    return scale.max if scale.lower_is_better else scale.min


def applicable(j: Judgement, scale: Scale) -> bool:
    return j.ok and j.score is not None and not scale.is_na(j.score)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def notebook_results(
    cases: Sequence[AgentCase],
    generations: Mapping[str, Generation],
    executions: Mapping[str, Execution],
    judgements: Iterable[ScoredJudgement],
    dims_of: Mapping[str, Sequence[str]],
) -> list[NotebookResult]:
    """One result per notebook asked for, with the judgements of its current version."""
    by_nb: dict[str, list[ScoredJudgement]] = defaultdict(list)
    for rec in judgements:
        by_nb[rec.id].append(rec)
    out = []
    for case in cases:
        for index in range(1, case.notebooks + 1):
            nid = notebook_id(case.id, index)
            g = generations.get(nid)
            if g is None:
                out.append(
                    NotebookResult(
                        case=case.id,
                        index=index,
                        status="failed",
                        failure="crash",
                        reason="not generated (the run stopped before this notebook)",
                    )
                )
                continue
            e = executions.get(nid) if g.ok else None
            if e is not None and e.sha256 != g.sha256:
                e = None
            recs = [
                r
                for r in by_nb.get(nid, [])
                if g.ok and r.sha256 == g.sha256 and r.judgement.dimension in dims_of[case.id]
            ]
            order = {d: n for n, d in enumerate(dims_of[case.id])}
            recs.sort(key=lambda r: order[r.judgement.dimension])
            out.append(
                NotebookResult(
                    case=case.id,
                    index=index,
                    status="ok" if g.ok else "failed",
                    failure=g.failure,
                    reason=g.reason,
                    notebook=g.notebook,
                    executed=e.result.executed if e is not None else None,
                    execution=e.result if e is not None else None,
                    seconds=g.seconds,
                    usage=g.usage,
                    judgements=tuple(r.judgement for r in recs),
                    judges={r.judgement.dimension: r.judge for r in recs},
                )
            )
    return out


def dimension_summaries(
    notebooks: Sequence[NotebookResult],
    rubric: Rubric,
    dimensions: Sequence[str],
    *,
    n_resamples: int,
    seed: int,
    confidence: float = 0.95,
) -> list[DimensionSummary]:
    out = []
    for dim in dimensions:
        scale = rubric.dimension(dim).scale
        values: list[float] = []
        groups: list[str] = []
        judged = na = failed = 0
        for nb in notebooks:
            for j in nb.judgements:
                if j.dimension != dim:
                    continue
                if not j.ok:
                    failed += 1
                    continue
                judged += 1
                if scale.is_na(j.score):
                    na += 1
                    continue
                values.append(float(j.score))  # type: ignore[arg-type]  # ok: score is set
                groups.append(nb.case)
        worst = worst_level(scale)
        ci = None
        if values:
            ci = bootstrap_ci(
                values,
                groups=groups,
                n_resamples=n_resamples,
                seed=seed,
                confidence=confidence,
            )
        out.append(
            DimensionSummary(
                dimension=dim,
                judged=judged,
                scored=len(values),
                cases=len(set(groups)),
                mean=ci,
                lowest=(sum(v == worst for v in values) / len(values)) if values else None,
                worst_level=worst,
                na=na,
                na_rate=na / judged if judged else None,
                failed=failed,
            )
        )
    return out


def case_summaries(
    cases: Sequence[AgentCase],
    notebooks: Sequence[NotebookResult],
    rubric: Rubric,
    dims_of: Mapping[str, Sequence[str]],
) -> list[CaseSummary]:
    by_case: dict[str, list[NotebookResult]] = defaultdict(list)
    for nb in notebooks:
        by_case[nb.case].append(nb)
    out = []
    for case in cases:
        nbs = by_case.get(case.id, [])
        ok = [nb for nb in nbs if nb.status == "ok"]
        scores: dict[str, float | None] = {}
        na: dict[str, int] = {}
        failed_j = 0
        for dim in dims_of[case.id]:
            scale = rubric.dimension(dim).scale
            js = [j for nb in ok for j in nb.judgements if j.dimension == dim]
            failed_j += sum(1 for j in js if not j.ok)
            scores[dim] = _mean([float(j.score) for j in js if applicable(j, scale)])  # type: ignore[arg-type]
            na[dim] = sum(1 for j in js if j.ok and scale.is_na(j.score))
        status: Literal["ok", "partial", "failed"] = (
            "failed" if not ok else ("partial" if len(ok) < case.notebooks else "ok")
        )
        errors = sum(1 for nb in ok if nb.execution is not None and nb.execution.status != "ok")
        out.append(
            CaseSummary(
                case=case.id,
                task=case.task,
                tags=case.all_tags,
                status=status,
                notebooks=case.notebooks,
                generated=len(ok),
                failures=tuple(
                    f"#{nb.index} {nb.failure}: {nb.reason}" for nb in nbs if nb.status != "ok"
                ),
                execution_errors=errors,
                dimensions=tuple(dims_of[case.id]),
                scores=scores,
                na=na,
                failed_judgements=failed_j,
            )
        )
    return out


def tag_summaries(
    cases: Sequence[AgentCase],
    notebooks: Sequence[NotebookResult],
    rubric: Rubric,
    dimensions: Sequence[str],
) -> list[TagSummary]:
    """Per tag (in order of first appearance) the mean applicable score over its notebooks."""
    tags: dict[str, list[AgentCase]] = {}
    for case in cases:
        for tag in case.all_tags:
            tags.setdefault(tag, []).append(case)
    by_case: dict[str, list[NotebookResult]] = defaultdict(list)
    for nb in notebooks:
        by_case[nb.case].append(nb)
    out = []
    for tag, members in tags.items():
        scores: dict[str, float | None] = {}
        n: dict[str, int] = {}
        for dim in dimensions:
            scale = rubric.dimension(dim).scale
            values = [
                float(j.score)  # type: ignore[arg-type]
                for c in members
                for nb in by_case.get(c.id, [])
                for j in nb.judgements
                if j.dimension == dim and applicable(j, scale)
            ]
            scores[dim] = _mean(values)
            n[dim] = len(values)
        failed = sum(
            1 for c in members if not any(nb.status == "ok" for nb in by_case.get(c.id, []))
        )
        out.append(TagSummary(tag=tag, cases=len(members), failed_cases=failed, scores=scores, n=n))
    return out


def failure_counts(notebooks: Sequence[NotebookResult]) -> dict[str, int]:
    counts = Counter(nb.failure or "crash" for nb in notebooks if nb.status != "ok")
    return dict(sorted(counts.items()))


def finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)
