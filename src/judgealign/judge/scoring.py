"""One judgement: the memory context an item gets, the call (one re-ask), the score.

Kept apart from ``Judge`` (which owns configuration, providers and fan-out) because this is
the part whose order of steps matters: retrieval, the context cap, the call, parsing. It is
handed what it needs (``Scorer``), so it does not know the ``Judge`` class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from judgealign.data.item import Item
from judgealign.errors import ParseError, ProviderError
from judgealign.judge.context_budget import fit_context
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import GUIDELINE_BUDGET_TOKENS, MAX_PER_GROUP, TEMPERATURE, JudgeParams
from judgealign.judge.parse import parse_judgement
from judgealign.judge.prompt import build_request
from judgealign.judge.texts import ItemTexts
from judgealign.memory.records import Episode, Guideline
from judgealign.memory.store import AlignmentMemory
from judgealign.providers.managed import discard_answer
from judgealign.providers.protocol import LLM
from judgealign.providers.types import Usage
from judgealign.rubric.model import Dimension, Rubric

PARSE_REMINDER = (
    "Your previous answer could not be read. Reply with ONLY the JSON object "
    '{"rationale": "...", "score": N}, with N one of the allowed scores.'
)

Shown = tuple[tuple[Guideline, ...], tuple[tuple[Episode, float], ...]]


@dataclass(frozen=True)
class Scorer:
    """Everything one judgement reads: configuration, rubric, model, memory, rendered texts."""

    rubric: Rubric
    params: JudgeParams
    llm: LLM
    memory: AlignmentMemory | None
    texts: ItemTexts

    def memory_context(
        self, item: Item, dim: Dimension, vector: np.ndarray | None, item_text: str
    ) -> Shown:
        """The guidelines and (episode, similarity) pairs shown with ``item``."""
        p = self.params
        if self.memory is None or vector is None or not p.reads_memory:
            return (), ()
        # N/A examples are shown only when the closest example is N/A: small judges copy an
        # N/A verdict onto applicable items. Over-fetch so k applicable ones remain.
        filter_na = dim.scale.na_value is not None
        ctx = self.memory.context(
            dim.id,
            vector,
            k=(2 * p.k if filter_na else p.k) if p.reads_examples else 0,
            similarity_floor=p.similarity_floor,
            max_per_group=MAX_PER_GROUP,
            max_guidelines=p.max_guidelines if p.reads_guidelines else 0,
            guideline_budget_tokens=GUIDELINE_BUDGET_TOKENS if p.reads_guidelines else 0,
            exclude_items={item.id},
        )
        guidelines, episodes = ctx.guidelines, ctx.episodes
        nearest = max(episodes, key=lambda e: e[1]) if episodes else None
        if filter_na and nearest is not None and not dim.scale.is_na(nearest[0].score):
            episodes = tuple(e for e in episodes if not dim.scale.is_na(e[0].score))
        episodes = episodes[: p.k]
        if p.context_ratio is not None and (guidelines or episodes):
            zero_shot = build_request(
                model=self.llm.name, item_id=item.id, item_text=item_text, dimension=dim
            )
            budget = int(p.context_ratio * zero_shot.estimated_prompt_tokens)
            guidelines, episodes = fit_context(guidelines, episodes, budget)
        return guidelines, episodes

    async def judge(self, item: Item, dim_id: str, vector: np.ndarray | None) -> Judgement:
        """One judgement of ``item`` on ``dim_id``; a failure is returned, never raised."""
        dim = self.rubric.dimension(dim_id)
        p = self.params
        text = self.texts.item_text(item, p.item_budget_tokens)
        guidelines, episodes = self.memory_context(item, dim, vector, text)
        usage = Usage()
        raw = ""
        error: str | None = None
        record: dict[str, Any] = {
            "item": item.id,
            "dimension": dim_id,
            "model": self.llm.name,
            "guidelines": tuple(g.id for g in guidelines),
            "episodes": tuple(e.id for e, _ in episodes),
        }
        for attempt in (1, 2):
            request = build_request(
                model=self.llm.name,
                item_id=item.id,
                item_text=text,
                dimension=dim,
                guidelines=guidelines,
                episodes=episodes,
                temperature=TEMPERATURE,
                seed=p.seed,
                max_tokens=p.max_tokens,
                reminder=PARSE_REMINDER if attempt == 2 else "",
            )
            try:
                response = await self.llm.complete(request)
            except ProviderError as exc:
                error = f"provider error: {exc}"
                break
            usage = usage + response.usage
            raw = response.text
            try:
                score, rationale = parse_judgement(raw, dim.scale)
            except ParseError as exc:
                error = f"unparseable answer: {exc}"
                discard_answer(self.llm, request)
                continue
            return Judgement(
                score=score,
                rationale=rationale,
                attempts=attempt,
                raw=raw,
                usage=usage,
                **record,
            )
        attempts = 2 if error and error.startswith("unparseable") else 1
        return Judgement(score=None, error=error, attempts=attempts, raw=raw, usage=usage, **record)
