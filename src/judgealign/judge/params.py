"""Judge configuration: the few settings that decide a judge's behaviour, persisted with it.

Everything else a judgement depends on is a fixed, benchmarked constant below: the values
``bench/quality.py`` and ``bench/cost.py`` measured (aligned prompts within 1.5x of the
zero-shot prompt), so the published figures describe what a user gets out of the box.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Variant = Literal["baseline", "semantic", "episodic", "full"]
VARIANTS: tuple[Variant, ...] = ("baseline", "semantic", "episodic", "full")

# Fixed budgets and rules (sized by bench/cost.py: k=2 short episodes and a 400-token
# guideline budget keep aligned prompts within 1.5x the baseline's; k=3 with 350-token
# episodes was 1.8x).
EPISODE_BUDGET_TOKENS = 250  # each example's rendered item is trimmed to this
GUIDELINE_BUDGET_TOKENS = 400  # guidelines shown per judgement, all when they fit
REFLECTION_BATCH_TOKENS = 3000  # a 6,000-token batch made one 0.5B call run >10 min
MERGE_THRESHOLD = 0.9  # cosine above which two guidelines are merged
MAX_PER_GROUP = 1  # examples from one input group (one article, one prompt) per judgement
TEMPERATURE = 0.0


class JudgeParams(BaseModel):
    """A judge's configuration without its rubric (what a judge file stores).

    ``model``/``reflection_model``/``embedder`` hold provider names; ``None`` means the
    embedded local model where it is installed (never a fake). ``variant`` says which memory
    the judge reads: ``baseline`` (none: the zero-shot judge), ``semantic`` (guidelines),
    ``episodic`` (examples) or ``full`` (both).

    >>> JudgeParams(k=5).model_copy(update={"variant": "episodic"}).reads_guidelines
    False
    """

    model_config = ConfigDict(frozen=True)

    model: str | None = None
    reflection_model: str | None = None  # None: the judge model reflects too
    embedder: str | None = None
    variant: Variant = "full"
    k: int = Field(default=2, ge=0)  # expert-scored examples shown per judgement
    max_guidelines: int = Field(default=6, ge=1)
    # Memory context (guidelines + examples) at most this fraction of the zero-shot prompt's
    # tokens, per item; None: only the fixed budgets apply (prompt growth unbounded).
    context_ratio: float | None = Field(default=0.5, gt=0.0)
    similarity_floor: float = Field(default=0.2, ge=-1.0, le=1.0)
    item_budget_tokens: int = Field(default=1500, ge=200)
    max_tokens: int = Field(default=400, ge=16)
    seed: int = 0

    @property
    def reads_guidelines(self) -> bool:
        return self.variant in ("semantic", "full")

    @property
    def reads_examples(self) -> bool:
        return self.variant in ("episodic", "full")

    @property
    def reads_memory(self) -> bool:
        return self.variant != "baseline"


# Fields of judge files written before 0.2 that the core no longer has. Experiments (score
# maps, base-rate lines, answer-format tricks) were removed because the committed benchmarks
# show none of them beating the calibrated baseline; the rest became fixed constants.
REMOVED_EXPERIMENTS = (
    "calibrate",
    "base_rates",
    "use_expected_score",
    "blend",
    "blend_k",
    "recalibrate",
    "score_first",
)
FIXED_SETTINGS = (
    "max_per_group",
    "prefer_disagreements",
    "na_examples",
    "guideline_budget_tokens",
    "episode_budget_tokens",
    "reflection_batch_tokens",
    "merge_threshold",
    "temperature",
)


def params_from_legacy(data: dict[str, object]) -> tuple[dict[str, object], list[str]]:
    """Params of a judge file in any schema, and the experiments it used that are gone.

    Schema-1 files have ``semantic``/``episodic`` switches instead of ``variant``; their
    fixed settings are dropped (the constants above apply).

    >>> params_from_legacy({"model": "fake:mimic", "semantic": False, "episodic": True,
    ...                     "blend": True, "k": 3})
    ({'model': 'fake:mimic', 'k': 3, 'variant': 'episodic'}, ['blend'])
    """
    out = dict(data)
    semantic = bool(out.pop("semantic", True))
    episodic = bool(out.pop("episodic", True))
    if "variant" not in out and ("semantic" in data or "episodic" in data):
        out["variant"] = {
            (True, True): "full",
            (True, False): "semantic",
            (False, True): "episodic",
            (False, False): "baseline",
        }[(semantic, episodic)]
    used = [k for k in REMOVED_EXPERIMENTS if k != "blend_k" and out.get(k)]
    for key in (*REMOVED_EXPERIMENTS, *FIXED_SETTINGS):
        out.pop(key, None)
    return out, used
