"""EvaluationReport: everything an evaluation found, as pure, versioned data.

Renderers (console, Markdown, HTML, MLflow) read only this; nothing here computes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from judgealign.errors import DataError
from judgealign.judge.judgement import Judgement
from judgealign.providers.types import Usage
from judgealign.rubric.model import Rubric

# 2: ``memory`` and ``examples`` added (what the aligned judges learned and were shown); the
#    experimental score blends and calibrations (``blends``, ``calibrations``) removed. Version
#    1 files still load: keys this model no longer has are ignored, the new ones default empty.
REPORT_SCHEMA_VERSION = 2
EXAMPLE_RATIONALE_CHARS = 500


class Interval(BaseModel):
    """A point estimate with a confidence interval."""

    model_config = ConfigDict(frozen=True)

    estimate: float
    low: float
    high: float
    method: str = "percentile"  # "percentile" | "bca" | "n/a"
    confidence: float = 0.95


class DimensionResult(BaseModel):
    """How one variant's judge did on one dimension, pooled over the out-of-fold predictions."""

    model_config = ConfigDict(frozen=True)

    variant: str
    dimension: str
    n_items: int  # items with an expert label on this dimension
    n_scored: int  # both expert and judge applicable, judgement ok
    mae: Interval | None  # None when n_scored == 0
    bias: Interval | None  # mean signed error judge - expert (positive = lenient)
    exact_agreement: float | None = None
    within_one: float | None = None
    qwk: float | None = None
    spearman: float | None = None
    krippendorff_alpha: float | None = None  # interval alpha, judge + expert as two coders
    na_agreement: float | None = None  # share of items where judge and expert agree on N/A-ness
    na_expert_only: int = 0
    na_judge_only: int = 0
    failed: int = 0
    # confusion axis labels, e.g. ["1", "2", "3", "N/A"]
    levels: list[str] = Field(default_factory=list)
    confusion: list[list[int]] = Field(default_factory=list)  # rows: expert, cols: judge


class Comparison(BaseModel):
    """Paired bootstrap of per-item absolute errors: ``variant`` against ``reference``."""

    model_config = ConfigDict(frozen=True)

    dimension: str
    reference: str  # usually "baseline"
    variant: str
    n: int
    mae_reference: float
    mae_variant: float
    delta: Interval  # mae_variant - mae_reference (negative = better)
    p_value: float
    p_holm: float  # Holm-adjusted across dimensions (per variant)
    relative_change: float | None = None  # delta / mae_reference
    # Both MAEs with their intervals over the same ``n`` paired items (the expert and both
    # judges scored them), so a table row compares like with like; None in older reports.
    reference_mae: Interval | None = None
    variant_mae: Interval | None = None


class CurvePoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    dimension: str
    variant: str
    n_labels: int  # labels per dimension used for alignment (per training fold, on average)
    mae: Interval | None


class ReferenceLine(BaseModel):
    """Reference levels a judge is measured against, per dimension."""

    model_config = ConfigDict(frozen=True)

    dimension: str
    median_predictor_mae: float | None = None  # always answering the training median
    # The baseline's scores through an affine map fitted on each fold's training items (no
    # call): what correcting the unaligned judge's scale alone reaches, which memory must beat.
    calibrated_baseline_mae: float | None = None
    human_human_mae: float | None = None  # leave-one-out rater vs the others, where available
    n_multi_rated: int = 0


class LearnedGuideline(BaseModel):
    """One guideline a fold's judge distilled, with the expert labels behind it."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    support: int = 0  # how many expert labels it was distilled from
    sources: tuple[str, ...] = ()  # those labels' ids


class FoldMemory(BaseModel):
    """What one fold's aligned judge learned on one dimension from its training labels."""

    model_config = ConfigDict(frozen=True)

    fold: int
    dimension: str
    n_episodes: int = 0  # labelled examples it could retrieve
    guidelines: list[LearnedGuideline] = Field(default_factory=list)  # most support first


class ShownExample(BaseModel):
    """A labelled example some judgement was shown (an episode, by its label id)."""

    model_config = ConfigDict(frozen=True)

    id: str  # the label id, as in ``Judgement.episodes``
    item: str
    dimension: str
    rater: str = ""
    score: float  # that rater's expert score
    rationale: str = ""  # cut at EXAMPLE_RATIONALE_CHARS


class JudgementRecord(BaseModel):
    """One out-of-fold judgement with where it came from."""

    model_config = ConfigDict(frozen=True)

    variant: str
    fold: int
    expert: float | None  # the expert (mean) score, None if unlabelled
    judgement: Judgement


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = ""
    rubric_id: str
    model: str
    reflection_model: str | None = None
    embedder: str
    folds: int
    seed: int
    variants: list[str]
    dimensions: list[str]
    n_items: int
    n_groups: int
    n_labels: int
    n_resamples: int
    ci_method: str
    draw_size: int | None = None  # set only for the reference study's anti-conservative scheme
    params: dict[str, Any] = Field(default_factory=dict)


class EvaluationReport(BaseModel):
    """The whole result of ``evaluate``: versioned JSON, every judgement with provenance."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = REPORT_SCHEMA_VERSION
    created: str  # ISO 8601 UTC
    judgealign_version: str
    config: RunConfig
    rubric: Rubric
    results: list[DimensionResult]
    comparisons: list[Comparison] = Field(default_factory=list)
    references: list[ReferenceLine] = Field(default_factory=list)
    learning_curve: list[CurvePoint] = Field(default_factory=list)
    # What the aligned judges learned, per fold and dimension; judgements refer to these
    # guidelines and examples by id (texts are stored once, here).
    memory: list[FoldMemory] = Field(default_factory=list)
    examples: list[ShownExample] = Field(default_factory=list)
    judgements: list[JudgementRecord] = Field(default_factory=list)
    usage_alignment: Usage = Field(default_factory=Usage)
    usage_scoring: Usage = Field(default_factory=Usage)
    wall_seconds: float = 0.0
    leakage_checked: bool = False
    notes: list[str] = Field(default_factory=list)

    def result(self, variant: str, dimension: str) -> DimensionResult | None:
        for r in self.results:
            if r.variant == variant and r.dimension == dimension:
                return r
        return None

    def comparison(self, dimension: str, variant: str) -> Comparison | None:
        for c in self.comparisons:
            if c.dimension == dimension and c.variant == variant:
                return c
        return None

    def to_json(self) -> str:
        return self.model_dump_json(indent=1)

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> EvaluationReport:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable report JSON ({exc}); rerun evaluate") from None
        version = data.get("schema_version") if isinstance(data, dict) else None
        if not isinstance(version, int) or version > REPORT_SCHEMA_VERSION:
            raise DataError(
                f"{path}: report schema_version {version!r} is not supported "
                f"(this judgealign reads <= {REPORT_SCHEMA_VERSION}); upgrade judgealign"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise DataError(f"{path}: invalid report ({exc.errors()[0]['msg']})") from None
