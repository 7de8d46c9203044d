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
# 3: what each interval resampled (``Interval.unit``, ``n_groups``, ``expanded``;
#    ``RunConfig.bootstrap``), repeated cross-validation (``RunConfig.repeats``, per-repeat
#    MAEs, ``repeat`` on judgements and memories), the human reference from multi-rater labels
#    (``ReferenceLine.human_alpha``) and the sample-size plan (``plan``). Version 2 files load
#    as item-bootstrap, single-repeat reports without a plan.
REPORT_SCHEMA_VERSION = 3
EXAMPLE_RATIONALE_CHARS = 500


# NaN ("no test": a comparison on one input group, a repeat with no scored item) must survive a
# JSON round trip; pydantic's default writes it as null, which then fails to load.
_NAN_OK = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class Interval(BaseModel):
    """A point estimate with a confidence interval."""

    model_config = _NAN_OK

    estimate: float
    low: float
    high: float
    method: str = "percentile"  # "percentile" | "bca" | "n/a"
    confidence: float = 0.95
    unit: str = "item"  # what one resample drew: "item", or "cluster" (items sharing an input)
    n_groups: int | None = None  # clusters resampled, when unit is "cluster"
    expanded: bool = False  # widened for a small sample (see evaluation/bootstrap.py)


class DimensionResult(BaseModel):
    """How one variant's judge did on one dimension, pooled over the out-of-fold predictions."""

    model_config = _NAN_OK

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
    # With repeated cross-validation: the MAE of each repeat (its spread is the alignment
    # variance the item-sampling interval ``mae`` does not show). ``mae`` is then over each
    # item's error averaged across repeats, agreement figures are means over repeats and the
    # confusion counts are summed over them. Empty with one repeat.
    mae_repeats: list[float] = Field(default_factory=list)


class Comparison(BaseModel):
    """Paired bootstrap of per-item absolute errors: ``variant`` against ``reference``."""

    model_config = _NAN_OK

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
    # Repeats of the cross-validation the test resampled along with the items (1: items only),
    # and the change in each repeat.
    n_repeats: int = 1
    delta_repeats: list[float] = Field(default_factory=list)
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
    # The same with its interval (resampling items, or their groups, as the judges' MAE is).
    human_human: Interval | None = None
    human_alpha: float | None = None  # Krippendorff's alpha (interval) among the raters
    n_raters: int = 0
    labels_per_item: float = 1.0  # labels per labelled item on this dimension (raters)


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
    repeat: int = 0  # which repeat of the cross-validation (0: the first)
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
    repeat: int = 0  # which repeat of the cross-validation (the baseline's are all repeat 0)


# NaN (an expected width no simulated set could give) must survive a JSON round trip.
_PLAN_CONFIG = ConfigDict(frozen=True, ser_json_inf_nan="strings")


class PlanPoint(BaseModel):
    """A simulated evaluation size and what it gives."""

    model_config = _PLAN_CONFIG

    n_groups: int
    n_items: int  # labelled items (N/A ones included)
    n_labels: int  # labels to collect on this dimension (items x raters per item)
    width: float  # expected width of the MAE interval
    power: float | None = None  # probability of detecting the change (None: no comparison)


class DimensionPlan(BaseModel):
    """The plan for one dimension: what the pilot gives now, and the sizes that reach the
    targets (``None``: not within ``MAX_ITEMS`` items; ``labels_for_power`` is also None when
    there is no comparison to power)."""

    model_config = _PLAN_CONFIG

    dimension: str
    variant: str  # whose MAE interval is planned (the aligned judge's)
    reference: str | None = None  # what the change is measured against (the baseline)
    pilot_items: int  # labelled items in the pilot
    pilot_groups: int
    pilot_labels: int
    applicable_share: float  # share of labelled items the variant's MAE is over
    labels_per_item: float
    pilot_mae: float
    pilot_change: float | None = None  # the pilot's own MAE change (variant - reference)
    width: float  # target interval width
    change: float | None = None  # target change to detect
    power: float  # target power
    alpha: float
    width_now: float  # expected width at the pilot's size
    power_now: float | None = None
    groups_for_width: int | None = None
    items_for_width: int | None = None
    labels_for_width: int | None = None
    groups_for_power: int | None = None
    items_for_power: int | None = None
    labels_for_power: int | None = None
    curve: list[PlanPoint] = Field(default_factory=list)  # a few sizes, smallest first


class SampleSizePlan(BaseModel):
    """Labels needed per dimension, planned from a pilot evaluation by simulation
    (``judgealign.evaluation.planning`` says how, and what it assumes)."""

    model_config = _PLAN_CONFIG

    unit: str  # "cluster" (input groups drawn whole) or "item"
    simulations: int
    seed: int
    confidence: float = 0.95
    dimensions: list[DimensionPlan] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # dimensions with nothing to plan from, why


class RunConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str = ""
    rubric_id: str
    model: str
    reflection_model: str | None = None
    # None: a baseline-only run, which embeds nothing.
    embedder: str | None = None
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
    # What every interval and paired test resampled: "item", or "cluster" (whole groups of
    # items sharing an input; the default whenever such groups exist).
    bootstrap: str = "item"
    # Repeats of the grouped cross-validation (fold and judge seeds seed, seed + 1, ...).
    repeats: int = 1
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
    # Input group of each labelled item that shares one (items absent are their own group):
    # what the cluster bootstrap resampled, and what a plan from this report draws.
    item_groups: dict[str, str] = Field(default_factory=dict)
    # Labels needed per dimension, planned from this run (``judgealign plan`` replans).
    plan: SampleSizePlan | None = None

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
