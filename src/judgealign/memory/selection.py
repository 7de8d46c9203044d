"""Which guidelines go into one judge prompt."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from judgealign.memory.records import Guideline

# Prompt cost of a guideline beyond its text: the list number and the newline.
LINE_OVERHEAD_TOKENS = 3


def guideline_cost(guideline: Guideline) -> int:
    from judgealign.render.tokens import estimate_tokens

    return estimate_tokens(guideline.text) + LINE_OVERHEAD_TOKENS


def select_guidelines(
    guidelines: Sequence[Guideline],
    vectors: np.ndarray,
    query: np.ndarray,
    *,
    max_guidelines: int,
    budget_tokens: int,
) -> list[int]:
    """Indices of the guidelines to show, in prompt order.

    All of them (in stored order: support first) when they fit both limits; otherwise the
    most relevant first, relevance = ``(1 + cosine) / 2 * log2(1 + support)``, skipping
    any that would overflow the token budget. Ties go to the stored order.

    >>> g = [Guideline.create("d", t, ("a",)) for t in ("one rule", "another rule")]
    >>> vecs = np.eye(2, dtype=np.float32)
    >>> select_guidelines(g, vecs, vecs[1], max_guidelines=1, budget_tokens=100)
    [1]
    """
    if not guidelines or max_guidelines <= 0 or budget_tokens <= 0:
        return []
    costs = [guideline_cost(g) for g in guidelines]
    if len(guidelines) <= max_guidelines and sum(costs) <= budget_tokens:
        return list(range(len(guidelines)))
    if vectors.shape[0] == len(guidelines) and vectors.shape[1] == query.shape[0]:
        cos = vectors @ query.astype(np.float32)
    else:
        cos = np.zeros(len(guidelines), dtype=np.float32)
    relevance = [
        (1.0 + float(c)) / 2.0 * math.log2(1 + g.support)
        for c, g in zip(cos.tolist(), guidelines, strict=True)
    ]
    order = sorted(range(len(guidelines)), key=lambda i: (-relevance[i], i))
    chosen: list[int] = []
    spent = 0
    for i in order:
        if len(chosen) == max_guidelines:
            break
        if spent + costs[i] <= budget_tokens:
            chosen.append(i)
            spent += costs[i]
    return chosen
