"""Fit the memory context into a budget relative to the zero-shot prompt.

Fixed per-episode budgets suit long items (notebooks, articles) but double the prompt of a
short one (a question and two answers): the aligned judge then costs 2x the baseline for the
same item. A relative budget (``context_ratio`` x the baseline prompt's tokens) bounds that cost
on every item, whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence

from judgealign.memory.records import Episode, Guideline
from judgealign.render.tokens import estimate_tokens, truncate_to_tokens

# Fixed wrapping of one rendered episode (tags, "Expert score", "Expert justification") and of
# the section headers; estimated once from prompt.render_* on typical values.
EPISODE_OVERHEAD_TOKENS = 30
SECTION_OVERHEAD_TOKENS = 30
# Below this (item text + justification) an example loses its content (a clipped head and
# tail of a few words); fewer, readable examples teach more than many unreadable ones.
MIN_EPISODE_TOKENS = 60
# With examples present, guidelines may use at most this share of the budget.
GUIDELINE_SHARE = 0.5


def _guideline_tokens(g: Guideline) -> int:
    return estimate_tokens(g.text) + 3


def _trim_episode(ep: Episode, budget: int) -> Episode:
    """``ep`` with text and justification shortened to ``budget`` tokens together."""
    body = budget - EPISODE_OVERHEAD_TOKENS
    text_t, why_t = estimate_tokens(ep.text), estimate_tokens(ep.rationale)
    if text_t + why_t <= body:
        return ep
    if not why_t:
        return ep.model_copy(update={"text": truncate_to_tokens(ep.text, body)})
    # The justification carries the experts' reasoning; keep up to 40% for it, give the rest
    # (and whatever it does not use) to the item text.
    why_budget = min(why_t, int(body * 0.4))
    text_budget = body - why_budget
    if text_t < text_budget:
        why_budget = min(why_t, body - text_t)
        text_budget = text_t
    return ep.model_copy(
        update={
            "text": truncate_to_tokens(ep.text, text_budget),
            "rationale": truncate_to_tokens(ep.rationale, why_budget),
        }
    )


def fit_context(
    guidelines: Sequence[Guideline],
    episodes: Sequence[tuple[Episode, float]],
    budget_tokens: int,
) -> tuple[tuple[Guideline, ...], tuple[tuple[Episode, float], ...]]:
    """Keep guidelines (in order) and episodes (best first) within ``budget_tokens``.

    Guidelines take at most half the budget when there are examples; examples share the rest
    equally, each trimmed (item text and justification) to its share, dropping the least
    similar while a share would fall under ``MIN_EPISODE_TOKENS``.

    >>> from judgealign.memory.records import Guideline
    >>> g = Guideline(id="g1", dimension="d", text="Penalize leakage.", sources=("l1",))
    >>> fit_context([g], [], 100)[0] == (g,)
    True
    >>> fit_context([g], [], 1)
    ((), ())
    """
    budget = budget_tokens - SECTION_OVERHEAD_TOKENS * (bool(guidelines) + bool(episodes))
    g_cap = int(budget * GUIDELINE_SHARE) if episodes else budget
    kept_g: list[Guideline] = []
    used = 0
    for g in guidelines:
        cost = _guideline_tokens(g)
        if used + cost <= g_cap:
            kept_g.append(g)
            used += cost
    if not kept_g:
        budget += SECTION_OVERHEAD_TOKENS if guidelines else 0
    left = budget - used
    eps = list(episodes)
    while eps and left // len(eps) - EPISODE_OVERHEAD_TOKENS < MIN_EPISODE_TOKENS:
        eps.pop()
    if not eps:
        return tuple(kept_g), ()
    share = left // len(eps)
    return tuple(kept_g), tuple((_trim_episode(ep, share), sim) for ep, sim in eps)
