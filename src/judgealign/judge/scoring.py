"""One judgement: the memory context an item gets, the call (one re-ask), the final score.

Kept apart from ``Judge`` (which owns providers, fit and fan-out) because this is the part
every variant, the calibration pass and the resume path share, and the part whose order of
steps matters: retrieval, the context cap, parsing, expected score, then calibration or blend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from judgealign.data.item import Item
from judgealign.errors import ParseError, ProviderError
from judgealign.judge.context_budget import fit_context
from judgealign.judge.judgement import Judgement
from judgealign.judge.parse import expected_score, parse_judgement
from judgealign.judge.prompt import build_request
from judgealign.memory.base_rates import describe_base_rates
from judgealign.providers.types import Usage
from judgealign.render.tokens import estimate_tokens
from judgealign.rubric.model import Dimension

if TYPE_CHECKING:
    from judgealign.judge.judge import Judge

PARSE_REMINDER = (
    "Your previous answer could not be read. Reply with ONLY the JSON object "
    '{"rationale": "...", "score": N}, with N one of the allowed scores.'
)


def memory_context(
    judge: Judge,
    item: Item,
    dim: Dimension,
    vector: np.ndarray | None,
    item_text: str,
    *,
    leave_group_out: bool = False,
) -> tuple[str, tuple[Any, ...], tuple[Any, ...]]:
    """The base-rate line, guidelines and (episode, similarity) pairs shown with ``item``."""
    p = judge.params
    memory = judge.memory_
    if memory is None or vector is None or not (p.semantic or p.episodic):
        return "", (), ()
    rates = ""
    if p.semantic and p.base_rates:
        rates = describe_base_rates(
            (
                e
                for e in memory.episodes(dim.id)
                if e.item != item.id and not (leave_group_out and e.group == item.group_id)
            ),
            dim.scale,
        )
    # Over-fetch when N/A examples may be filtered out, so k applicable ones remain.
    filter_na = p.na_examples == "nearest" and dim.scale.na_value is not None
    ctx = memory.context(
        dim.id,
        vector,
        k=(2 * p.k if filter_na else p.k) if p.episodic else 0,
        similarity_floor=p.similarity_floor,
        max_per_group=p.max_per_group,
        prefer_disagreements=p.prefer_disagreements,
        max_guidelines=p.max_guidelines if p.semantic else 0,
        guideline_budget_tokens=p.guideline_budget_tokens if p.semantic else 0,
        exclude_items={item.id},
        exclude_groups={item.group_id} if leave_group_out else (),
    )
    guidelines, episodes = ctx.guidelines, ctx.episodes
    nearest = max(episodes, key=lambda e: e[1]) if episodes else None
    if filter_na and nearest is not None and not dim.scale.is_na(nearest[0].score):
        episodes = tuple(e for e in episodes if not dim.scale.is_na(e[0].score))
    episodes = episodes[: p.k]
    if p.context_ratio is not None and (guidelines or episodes or rates):
        zero_shot = build_request(
            model=judge.llm.name, item_id=item.id, item_text=item_text, dimension=dim
        )
        budget = int(p.context_ratio * zero_shot.estimated_prompt_tokens)
        # The base-rate line is short and kept whole; guidelines and examples share the rest.
        guidelines, episodes = fit_context(
            guidelines, episodes, max(0, budget - estimate_tokens(rates))
        )
    return rates, guidelines, episodes


async def judge_one(
    judge: Judge,
    item: Item,
    dim_id: str,
    vector: np.ndarray | None,
    *,
    leave_group_out: bool = False,
) -> Judgement:
    """One judgement of ``item`` on ``dim_id``; a failure is returned, never raised.

    ``leave_group_out``: the item's whole input group is kept out of retrieval and the raw
    score is returned (no calibration, no blend): how a training item is scored to fit the
    calibration.
    """
    dim = judge.rubric.dimension(dim_id)
    p = judge.params
    text = judge._texts.item_text(item, p.item_budget_tokens)
    rates, guidelines, episodes = memory_context(
        judge, item, dim, vector, text, leave_group_out=leave_group_out
    )
    usage = Usage()
    raw = ""
    error: str | None = None
    for attempt in (1, 2):
        request = build_request(
            model=judge.llm.name,
            item_id=item.id,
            item_text=text,
            dimension=dim,
            guidelines=guidelines,
            episodes=episodes,
            base_rates=rates,
            temperature=p.temperature,
            seed=p.seed,
            max_tokens=p.max_tokens,
            want_probs=p.use_expected_score,
            score_first=p.score_first,
            reminder=PARSE_REMINDER if attempt == 2 else "",
        )
        try:
            response = await judge.llm.complete(request)
        except ProviderError as exc:
            error = f"provider error: {exc}"
            break
        usage = usage + response.usage
        raw = response.text
        try:
            score, rationale = parse_judgement(raw, dim.scale)
        except ParseError as exc:
            error = f"unparseable answer: {exc}"
            continue
        exp = expected_score(response.score_probs, dim.scale)
        final = score
        if p.use_expected_score and exp is not None and not dim.scale.is_na(score):
            final = exp
        own, neighbours = None, None
        memory = None if leave_group_out else judge.memory_
        if memory is not None and p.recalibrate and not dim.scale.is_na(final):
            cal = memory.calibration(dim_id, p.variant)
            if cal is not None and cal.applied:
                own, final = final, cal.apply(final)
        if memory is not None and p.blend and p.episodic and vector is not None:
            blended = memory.blended(dim_id, vector, dim.scale, final, item.id)
            if blended is not None:
                own, (final, neighbours) = final, blended
        return Judgement(
            score=final,
            judge_score=own,
            neighbour_score=neighbours,
            rationale=rationale,
            expected_score=exp,
            attempts=attempt,
            **_record(item.id, dim_id, raw, judge.llm.name, usage, guidelines, episodes),
        )
    return Judgement(
        score=None,
        error=error,
        attempts=2 if error and error.startswith("unparseable") else 1,
        **_record(item.id, dim_id, raw, judge.llm.name, usage, guidelines, episodes),
    )


def _record(
    item: str,
    dimension: str,
    raw: str,
    model: str,
    usage: Usage,
    guidelines: tuple[Any, ...],
    episodes: tuple[Any, ...],
) -> dict[str, Any]:
    """The fields a judgement keeps whether or not its answer could be read."""
    return {
        "item": item,
        "dimension": dimension,
        "raw": raw,
        "model": model,
        "usage": usage,
        "guidelines": tuple(g.id for g in guidelines),
        "episodes": tuple(e.id for e, _ in episodes),
    }
