"""Judge hyper-parameters: everything that decides a judge's behaviour, persisted with it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Variant = Literal["baseline", "semantic", "episodic", "full"]
VARIANTS: tuple[Variant, ...] = ("baseline", "semantic", "episodic", "full")


class JudgeParams(BaseModel):
    """Judge settings (sklearn-style hyper-parameters).

    >>> JudgeParams(k=5).for_variant("episodic").semantic
    False
    """

    model_config = ConfigDict(frozen=True)

    model: str = "fake:constant"
    reflection_model: str | None = None  # None: the judge model reflects too
    embedder: str = "fake"
    # Ablation switches: both off = the zero-shot baseline.
    semantic: bool = True
    episodic: bool = True
    k: int = Field(default=3, ge=0)
    similarity_floor: float = Field(default=0.2, ge=-1.0, le=1.0)
    max_per_group: int = Field(default=1, ge=1)  # diversity: episodes from one input group
    prefer_disagreements: bool = True
    # "nearest": N/A examples are shown only when the closest example is N/A. Small judges
    # copy an N/A example's verdict onto applicable items; "all" shows them like any other.
    na_examples: Literal["all", "nearest"] = "nearest"
    max_guidelines: int = Field(default=12, ge=1)
    guideline_budget_tokens: int = Field(default=700, ge=0)
    item_budget_tokens: int = Field(default=3000, ge=200)
    episode_budget_tokens: int = Field(default=450, ge=50)
    # Memory context (guidelines + examples) at most this fraction of the zero-shot prompt's
    # tokens, per item; None: only the absolute budgets above apply.
    context_ratio: float | None = Field(default=None, gt=0.0)
    reflection_batch_tokens: int = Field(default=6000, ge=500)
    merge_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    calibrate: bool = False  # run the unaligned judge on training items during fit
    # Semantic variants also tell the judge how the experts spread their scores (and, with
    # ``calibrate``, which way the unaligned judge missed): memory/base_rates.py.
    base_rates: bool = False
    use_expected_score: bool = False
    # Stack the judge's score with its nearest examples' expert scores and the median, with
    # weights fitted on the training labels (memory/blend.py). Implies running the unaligned
    # judge on training items during fit. Applies to variants with episodic memory.
    blend: bool = False
    blend_k: int = Field(default=5, ge=1)
    # Map the aligned judge's score onto the experts' with a monotone affine map fitted on its
    # own leave-group-out scores of the training items (memory/calibration.py): one extra
    # aligned call per training item and dimension during fit. Not with ``blend``, whose
    # weights are fitted on the unaligned judge's raw scores.
    recalibrate: bool = False
    # Score before rationale: faster, and a small judge's score follows its context rather
    # than its own rationale; rationale first (the default) lets a capable model reason first.
    score_first: bool = False
    temperature: float = 0.0
    max_tokens: int = Field(default=400, ge=16)
    seed: int = 0

    @model_validator(mode="after")
    def _one_score_map(self) -> JudgeParams:
        if self.recalibrate and self.blend:
            raise ValueError("choose one of blend and recalibrate: both remap the judge's score")
        return self

    @property
    def variant(self) -> Variant:
        if self.semantic and self.episodic:
            return "full"
        if self.semantic:
            return "semantic"
        if self.episodic:
            return "episodic"
        return "baseline"

    def for_variant(self, variant: Variant) -> JudgeParams:
        return self.model_copy(
            update={
                "semantic": variant in ("semantic", "full"),
                "episodic": variant in ("episodic", "full"),
            }
        )
