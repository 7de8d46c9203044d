"""Fitting a judge's memory: check the labels, render and embed their items, distil.

Kept apart from ``Judge`` so the estimator only orchestrates: this module knows the memory
builder, the judge class does not need to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import DataError
from judgealign.judge.params import (
    EPISODE_BUDGET_TOKENS,
    MERGE_THRESHOLD,
    REFLECTION_BATCH_TOKENS,
    JudgeParams,
)
from judgealign.judge.texts import ItemTexts
from judgealign.memory.builder import MemoryBuilder
from judgealign.memory.store import AlignmentMemory
from judgealign.providers.protocol import LLM, Embedder
from judgealign.rubric.model import Rubric

OnDimension = Callable[[str], None]


def check_labels(rubric: Rubric, labels: Sequence[Label], items: Mapping[str, Item]) -> None:
    """DataError for an unknown dimension, an off-scale score, a missing item or a repeat."""
    seen: set[str] = set()
    for lb in labels:
        dim = rubric.dimension(lb.dimension)
        dim.scale.check(lb.score, where=f"label {lb.id}: ")
        if lb.item not in items:
            raise DataError(f"label {lb.id}: item {lb.item!r} is not among the given items")
        if lb.id in seen:
            raise DataError(f"label {lb.id} is given twice; keep one per item, dimension, rater")
        seen.add(lb.id)


def builder(
    params: JudgeParams, reflection: LLM, embedder: Embedder, *, distil: bool
) -> MemoryBuilder:
    return MemoryBuilder(
        reflection=reflection,
        embedder=embedder,
        max_guidelines=params.max_guidelines,
        merge_threshold=MERGE_THRESHOLD,
        batch_budget_tokens=REFLECTION_BATCH_TOKENS,
        seed=params.seed,
        distil=distil,
    )


async def fit_memory(
    rubric: Rubric,
    params: JudgeParams,
    labels: Sequence[Label],
    items: Sequence[Item],
    *,
    reflection: LLM,
    embedder: Embedder,
    texts: ItemTexts,
    memory: AlignmentMemory | None,
    on_dimension: OnDimension | None = None,
) -> AlignmentMemory:
    """``memory`` extended with ``labels``; only labels new to it cost calls.

    Guidelines are distilled only when the judge reads them (an episodic judge pays for no
    reflection call).
    """
    by_id = {it.id: it for it in items}
    check_labels(rubric, labels, by_id)
    known = memory.label_ids() if memory is not None else set()
    needed = sorted({lb.item for lb in labels if lb.id not in known})
    rendered = {i: texts.item_text(by_id[i], EPISODE_BUDGET_TOKENS) for i in needed}
    vectors = await texts.embed(embedder, [by_id[i] for i in needed], params.item_budget_tokens)
    return await builder(params, reflection, embedder, distil=params.reads_guidelines).fit(
        rubric,
        labels,
        texts=rendered,
        embeddings=vectors,
        groups={i: by_id[i].group_id for i in needed},
        memory=memory,
        on_dimension=on_dimension,
    )


async def forget_labels(
    rubric: Rubric,
    params: JudgeParams,
    memory: AlignmentMemory,
    label_ids: Collection[str],
    *,
    reflection: LLM,
    embedder: Embedder,
) -> AlignmentMemory:
    """``memory`` without ``label_ids`` and without anything distilled from them."""
    return await builder(params, reflection, embedder, distil=True).forget(
        memory, set(label_ids), rubric
    )
