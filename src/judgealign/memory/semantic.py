"""Semantic memory: distil guidelines from expert labels, merge, resolve conflicts, cap.

Distillation packs many labels into each reflection call (greedily, within a token budget),
shows the unaligned judge's score where known (disagreements carry the most signal), and
maps every guideline back to the label ids it came from. Consolidation then merges
near-duplicates (embedding cosine), asks the reflection model once per dimension to settle
likely contradictions, and keeps the best-supported ``max_guidelines``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from judgealign.data.label import item_of
from judgealign.errors import DataError, ProviderError
from judgealign.memory.guideline_text import clean_text, copies_source, word_ngrams
from judgealign.memory.reflection_prompts import (
    REFLECTION_SYSTEM,
    DraftView,
    LabelView,
    distil_footer,
    distil_header,
    distil_request,
    parse_entries,
    render_label,
    resolution_request,
)
from judgealign.memory.store import DistillFailure
from judgealign.providers.managed import discard_answer
from judgealign.providers.protocol import LLM
from judgealign.providers.types import ChatRequest
from judgealign.rubric.model import Dimension

# Guidelines this close in meaning but with different scores are likely contradictions.
CONTRADICTION_COSINE = 0.75
# At most this many guidelines go into the one resolution call per dimension and fit.
MAX_RESOLVE = 24
MIN_LABEL_TOKENS = 60  # a justification is never cut below this to fit a batch

Embed = Callable[[list[str]], Awaitable[np.ndarray]]


def _estimate(text: str) -> int:
    try:
        from judgealign.render.tokens import estimate_tokens
    except ImportError:  # pragma: no cover - render is part of the package
        return max(1, len(text) // 4)
    return estimate_tokens(text)


def _truncate(text: str, budget: int) -> str:
    from judgealign.render.tokens import truncate_to_tokens

    return truncate_to_tokens(text, budget)


@dataclass(frozen=True, eq=False)
class Draft:
    """A guideline under construction: text, implied score, provenance, embedding."""

    text: str
    score: float | None
    sources: tuple[str, ...]
    vector: np.ndarray | None = field(default=None, repr=False)
    new: bool = True  # distilled in this run (only new drafts trigger a resolution call)

    @property
    def support(self) -> int:
        return len(self.sources)

    @property
    def key(self) -> str:
        return " ".join(self.text.lower().split())


def _valid_score(score: float | None, dimension: Dimension) -> float | None:
    if score is None:
        return None
    try:
        return dimension.scale.check(score)
    except DataError:
        return None


class Distiller:
    """Runs the reflection calls of one fit (or forget).

    >>> from judgealign.testing import FakeLLM
    >>> d = Distiller(FakeLLM(), batch_budget_tokens=6000, max_guidelines=12, seed=0)
    >>> d.seed
    0
    """

    def __init__(
        self, llm: LLM, *, batch_budget_tokens: int, max_guidelines: int, seed: int
    ) -> None:
        self.llm = llm
        self.batch_budget_tokens = batch_budget_tokens
        self.max_guidelines = max_guidelines
        self.seed = seed

    # -- batching ---------------------------------------------------------------------------
    def fixed_tokens(self, dimension: Dimension) -> int:
        """Tokens every distillation call spends besides the labels."""
        return (
            _estimate(REFLECTION_SYSTEM)
            + _estimate(distil_header(dimension))
            + _estimate(distil_footer(self.max_guidelines))
            + 8
        )

    def plan(
        self, dimension: Dimension, views: Sequence[LabelView]
    ) -> list[list[tuple[LabelView, str]]]:
        """``(label, rendered block)`` per call: every label in exactly one batch, greedily.

        The order is seeded-shuffled (after sorting by id) so a batch mixes items and scores.
        """
        room = max(
            MIN_LABEL_TOKENS * 2,
            self.batch_budget_tokens - self.fixed_tokens(dimension),
        )
        ordered = sorted(views, key=lambda v: v.id)
        perm = np.random.default_rng(self.seed).permutation(len(ordered))
        batches: list[list[tuple[LabelView, str]]] = []
        used = 0
        for view in (ordered[i] for i in perm.tolist()):
            if batches:
                block = render_label(len(batches[-1]) + 1, view)
                cost = _estimate(block) + 1
                if used + cost <= room:
                    batches[-1].append((view, block))
                    used += cost
                    continue
            block = render_label(1, view)
            if _estimate(block) + 1 > room:
                # One oversized justification: keep its head and tail within the room.
                overhead = _estimate(render_label(1, view, rationale=""))
                budget = max(MIN_LABEL_TOKENS, room - overhead - 2)
                block = render_label(1, view, rationale=_truncate(view.rationale, budget))
            batches.append([(view, block)])
            used = _estimate(block) + 1
        return batches

    # -- calls ------------------------------------------------------------------------------
    async def _ask(
        self, build: Callable[[bool], ChatRequest], ref_key: str
    ) -> list[tuple[str, float | None, list[int]]] | str:
        """Parsed entries, or the error text after one retry with a reminder."""
        error = "unparseable reflection answer"
        for attempt in (1, 2):
            request = build(attempt == 2)
            try:
                response = await self.llm.complete(request)
            except ProviderError as exc:
                return f"provider error: {exc}"
            parsed = parse_entries(response.text, ref_key)
            if parsed is not None:
                return parsed
            discard_answer(self.llm, request)  # asked again next run, not replayed
            error = f"unparseable reflection answer (twice): {response.text[:120]!r}"
        return error

    async def distil(
        self, dimension: Dimension, views: Sequence[LabelView]
    ) -> tuple[list[Draft], list[DistillFailure]]:
        """Guideline drafts from ``views`` (every draft's sources are ids of its batch)."""
        if not views:
            return [], []
        results = await asyncio.gather(
            *(self._distil_batch(dimension, batch) for batch in self.plan(dimension, views))
        )
        drafts: list[Draft] = []
        failures: list[DistillFailure] = []
        for got in results:
            if isinstance(got, DistillFailure):
                failures.append(got)
            else:
                drafts.extend(got)
        return drafts, failures

    async def _distil_batch(
        self, dimension: Dimension, batch: list[tuple[LabelView, str]]
    ) -> list[Draft] | DistillFailure:
        members = [v for v, _ in batch]
        blocks = [b for _, b in batch]
        answer = await self._ask(
            lambda reminder: distil_request(
                model=self.llm.name,
                dimension=dimension,
                blocks=blocks,
                max_guidelines=self.max_guidelines,
                seed=self.seed,
                reminder=reminder,
            ),
            "sources",
        )
        ids = tuple(v.id for v in members)
        if isinstance(answer, str):
            return DistillFailure(dimension=dimension.id, labels=ids, error=answer)
        forbidden = sorted({item_of(v.id) for v in members})
        source_grams = word_ngrams(blocks)
        drafts = []
        for text, score, refs in answer:
            sources = tuple(sorted({members[r - 1].id for r in refs if 1 <= r <= len(members)}))
            cleaned = clean_text(text, forbidden)
            if cleaned and copies_source(cleaned, source_grams):
                continue
            if sources and cleaned:
                drafts.append(Draft(cleaned, _valid_score(score, dimension), sources))
        return drafts

    async def resolve(
        self, dimension: Dimension, drafts: Sequence[Draft]
    ) -> list[Draft] | DistillFailure:
        """One call: a consistent replacement for ``drafts`` (provenance = union of inputs)."""
        answer = await self._ask(
            lambda reminder: resolution_request(
                model=self.llm.name,
                dimension=dimension,
                drafts=[DraftView(d.text, d.score, d.support) for d in drafts],
                seed=self.seed,
                reminder=reminder,
            ),
            "from",
        )
        ids = tuple(sorted({s for d in drafts for s in d.sources}))
        if isinstance(answer, str) or not answer:
            error = answer if isinstance(answer, str) else "resolution returned no guidelines"
            return DistillFailure(dimension=dimension.id, labels=ids, error=error)
        by_key = {d.key: d for d in drafts}
        out: list[Draft] = []
        for text, score, refs in answer:
            parents = [drafts[r - 1] for r in sorted(set(refs)) if 1 <= r <= len(drafts)]
            cleaned = clean_text(text)
            if not parents or not cleaned:
                continue
            sources = tuple(sorted({s for p in parents for s in p.sources}))
            same = by_key.get(" ".join(cleaned.lower().split()))
            out.append(
                Draft(
                    cleaned,
                    _valid_score(score, dimension),
                    sources,
                    vector=same.vector if same is not None else None,
                    new=False,
                )
            )
        return out


def merge_drafts(drafts: Sequence[Draft], threshold: float) -> list[Draft]:
    """Merge near-duplicates (cosine >= threshold, compatible scores; identical text always).

    The better-supported text survives and gains the union of sources. Needs vectors.
    """
    order = sorted(drafts, key=lambda d: (-d.support, d.key, d.text))
    kept: list[Draft] = []
    for d in order:
        target = None
        for j, k in enumerate(kept):
            if k.key == d.key:
                target = j
                break
        if target is None and kept and d.vector is not None:
            mat = np.stack(
                [k.vector if k.vector is not None else np.zeros_like(d.vector) for k in kept]
            )
            cos = mat @ d.vector
            for j in np.argsort(-cos, kind="stable").tolist():
                if cos[j] < threshold:
                    break
                k = kept[j]
                if k.score is None or d.score is None or k.score == d.score:
                    target = j
                    break
        if target is None:
            kept.append(d)
            continue
        k = kept[target]
        kept[target] = replace(
            k,
            sources=tuple(sorted(set(k.sources) | set(d.sources))),
            score=k.score if k.score is not None else d.score,
            new=k.new or d.new,
        )
    return kept


def contradictions(drafts: Sequence[Draft]) -> list[int]:
    """Indices of drafts in likely contradictions that involve at least one new draft.

    Pairs: cosine >= CONTRADICTION_COSINE and different scores; strongest pairs first,
    bounded by MAX_RESOLVE drafts so resolution stays one short call.
    """
    rows = [i for i, d in enumerate(drafts) if d.vector is not None and d.score is not None]
    if len(rows) < 2:
        return []
    mat = np.stack([drafts[i].vector for i in rows])  # type: ignore[misc]
    cos = mat @ mat.T
    pairs: list[tuple[float, int, int]] = []
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            da, db = drafts[rows[a]], drafts[rows[b]]
            if cos[a, b] >= CONTRADICTION_COSINE and da.score != db.score and (da.new or db.new):
                pairs.append((-float(cos[a, b]), rows[a], rows[b]))
    involved: list[int] = []
    for _, i, j in sorted(pairs):
        extra = [x for x in (i, j) if x not in involved]
        if len(involved) + len(extra) > MAX_RESOLVE:
            break
        involved.extend(extra)
    return sorted(involved)


def cap_drafts(drafts: Sequence[Draft], max_guidelines: int) -> list[Draft]:
    """The best-supported ``max_guidelines`` (ties: text order), in that order."""
    return sorted(drafts, key=lambda d: (-d.support, d.key, d.text))[:max_guidelines]


async def _embed_missing(drafts: list[Draft], embed: Embed) -> list[Draft]:
    missing = [i for i, d in enumerate(drafts) if d.vector is None]
    if not missing:
        return drafts
    vecs = np.asarray(await embed([drafts[i].text for i in missing]), dtype=np.float32)
    out = list(drafts)
    for i, v in zip(missing, vecs, strict=True):
        out[i] = replace(out[i], vector=v)
    return out


async def consolidate(
    drafts: Sequence[Draft],
    *,
    dimension: Dimension,
    distiller: Distiller,
    embed: Embed,
    merge_threshold: float,
    max_guidelines: int,
) -> tuple[list[Draft], list[DistillFailure]]:
    """Embed, merge near-duplicates, resolve contradictions (at most one call), cap."""
    failures: list[DistillFailure] = []
    merged = merge_drafts(await _embed_missing(list(drafts), embed), merge_threshold)
    involved = contradictions(merged)
    if involved:
        resolved = await distiller.resolve(dimension, [merged[i] for i in involved])
        if isinstance(resolved, DistillFailure):
            failures.append(resolved)
        else:
            rest = [d for i, d in enumerate(merged) if i not in set(involved)]
            merged = merge_drafts(await _embed_missing(rest + resolved, embed), merge_threshold)
    return cap_drafts(merged, max_guidelines), failures
