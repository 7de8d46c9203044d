"""StressReport: what a stress test found, as pure versioned data (renderers only read it).

Score changes are always ``mutant - original`` on the rubric's scale. For an injection the
shift is signed towards what the planted text asks for (positive: the judge moved the way it
was told to). Intervals are bootstrap intervals over notebooks (whole notebooks resampled
where one notebook contributes several pairs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgealign.errors import DataError
from judgealign.evaluation.bootstrap import ConfidenceInterval
from judgealign.providers.types import Usage
from judgealign.rubric.model import Rubric
from judgealign.stress.probe import ProbeKind, ProbeSpec

STRESS_FORMAT = "judgealign.stress"
STRESS_SCHEMA_VERSION = 1
RATIONALE_CHARS = 400
DIFF_CHARS = 4000

_FROZEN = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class JudgeInfo(BaseModel):
    """One judge of the comparison, as it was run."""

    model_config = _FROZEN

    label: str
    model: str
    variant: str
    fitted: bool
    labels: int = 0  # expert labels in its memory
    source: str = ""  # the judge file, or how it was made
    item_budget_tokens: int = 1500


class StressConfig(BaseModel):
    model_config = _FROZEN

    name: str = ""
    rubric_id: str
    dimensions: list[str]
    judges: list[JudgeInfo]
    probes: list[ProbeSpec]
    seed: int
    n_items: int
    n_resamples: int
    confidence: float


class Applicability(BaseModel):
    """How many notebooks a probe applied to, and why it did not on the others."""

    model_config = _FROZEN

    probe: str
    kind: ProbeKind
    applied: int
    not_applicable: int
    reasons: dict[str, int] = Field(default_factory=dict)  # most frequent first


class PairRecord(BaseModel):
    """One judge's scores of one notebook and its mutant on one dimension."""

    model_config = _FROZEN

    judge: str
    probe: str
    item: str
    group: str
    dimension: str
    original: float | None
    mutant: float | None
    visible: bool = True  # whether the judge's rendering of the notebook changed at all
    error: str | None = None
    original_rationale: str = ""
    mutant_rationale: str = ""


class ProbeDimensionResult(BaseModel):
    """One judge, one probe, one dimension: how the scores moved.

    ``n``: pairs where both judgements succeeded and both scores are applicable (the ones the
    mean change is over); ``changed_rate`` counts every successful pair, N/A included.
    ``detection`` (a flaw's own dimension only): share of pairs whose mutant score fell to
    ``max_score`` or below from above it (``n_room`` pairs had that room; ``already_low``
    were scored at or below it before the flaw was planted; a mutant called N/A missed it).
    """

    model_config = _FROZEN

    judge: str
    probe: str
    kind: ProbeKind
    dimension: str
    target: bool
    n_pairs: int
    n: int
    n_failed: int = 0
    n_na: int = 0
    n_hidden: int = 0
    mean_change: ConfidenceInterval | None = None
    changed_rate: float | None = None
    detection: ConfidenceInterval | None = None
    n_room: int = 0
    already_low: int = 0
    toward_target: float | None = None  # injections: share moved towards the asked score


class ProbeSummary(BaseModel):
    """One judge and one probe over all dimensions."""

    model_config = _FROZEN

    judge: str
    probe: str
    kind: ProbeKind
    dimension: str | None = None  # a flaw's dimension
    max_score: int | None = None
    notebooks: int = 0
    detection: ConfidenceInterval | None = None
    target_change: ConfidenceInterval | None = None
    collateral: ConfidenceInterval | None = None  # mean |change| on the other dimensions
    false_alarm_rate: ConfidenceInterval | None = None
    shift: ConfidenceInterval | None = None  # injections, towards the asked score
    toward_target: float | None = None


class DimensionSummary(BaseModel):
    """One judge and one dimension, pooled over the probes of each kind."""

    model_config = _FROZEN

    judge: str
    dimension: str
    detection: ConfidenceInterval | None = None  # flaws aimed at this dimension
    detection_probes: int = 0
    mean_drop: ConfidenceInterval | None = None  # mean change under those flaws
    collateral: ConfidenceInterval | None = None  # mean |change| under flaws aimed elsewhere
    false_alarm_rate: ConfidenceInterval | None = None  # invariance probes
    injection_shift: ConfidenceInterval | None = None  # injection probes, towards the ask


class JudgeComparison(BaseModel):
    """A judge against the reference judge on the same pairs (paired bootstrap)."""

    model_config = _FROZEN

    judge: str
    reference: str
    dimension: str
    metric: str  # detection | false_alarm_rate | injection_shift
    n: int
    reference_value: float
    value: float
    delta: float
    low: float
    high: float
    p_value: float
    p_holm: float = 1.0


class MutationRecord(BaseModel):
    """What a probe changed in one notebook (the diff cut to ``DIFF_CHARS``)."""

    model_config = _FROZEN

    probe: str
    item: str
    notes: list[str]
    diff: str
    mutant_path: str = ""


class StressReport(BaseModel):
    """Everything one stress test found; ``stress.json`` in the run folder."""

    model_config = _FROZEN

    format: str = STRESS_FORMAT
    schema_version: int = STRESS_SCHEMA_VERSION
    judgealign_version: str
    created: str
    config: StressConfig
    rubric: Rubric
    applicability: list[Applicability]
    results: list[ProbeDimensionResult]
    probes: list[ProbeSummary]
    dimensions: list[DimensionSummary]
    comparisons: list[JudgeComparison] = Field(default_factory=list)
    mutations: list[MutationRecord] = Field(default_factory=list)
    pairs: list[PairRecord] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    wall_seconds: float = 0.0
    notes: list[str] = Field(default_factory=list)

    def dimension(self, judge: str, dimension: str) -> DimensionSummary | None:
        return next(
            (d for d in self.dimensions if d.judge == judge and d.dimension == dimension), None
        )

    def probe(self, judge: str, probe: str) -> ProbeSummary | None:
        return next((p for p in self.probes if p.judge == judge and p.probe == probe), None)

    def summary(self) -> str:
        """The console tables as plain text."""
        from judgealign.stress.console import render_text

        return render_text(self)

    def to_html(self, path: str | Path | None = None) -> str:
        """The HTML page; written to ``path`` when given."""
        from judgealign.stress.html import render_html, write_html

        if path is not None:
            write_html(self, Path(path))
        return render_html(self)

    def log_mlflow(self, run_dir: str | Path, **kwargs: Any) -> str:
        """Log to MLflow (see ``judgealign.stress.tracking.log_stress``); the run id."""
        from judgealign.stress.tracking import log_stress

        return log_stress(self, Path(run_dir), **kwargs)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.model_dump_json(indent=1), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> StressReport:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: no stress report; run `judgealign stress` first") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable stress report ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != STRESS_FORMAT:
            raise DataError(f"{path}: not a judgealign stress report")
        if int(data.get("schema_version", 0)) > STRESS_SCHEMA_VERSION:
            raise DataError(f"{path}: stress report from a newer judgealign; upgrade to read it")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise DataError(f"{path}: invalid stress report ({exc.errors()[0]['msg']})") from None
