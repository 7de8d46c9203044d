"""MemoryBuilder: incremental fit and exact forgetting of an AlignmentMemory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from judgealign.data.label import Label
from judgealign.errors import DataError
from judgealign.memory.records import Episode, Guideline
from judgealign.memory.reflection_prompts import LabelView
from judgealign.memory.semantic import Distiller, Draft, Embed, consolidate
from judgealign.memory.store import AlignmentMemory, DimensionMemory, DistillFailure
from judgealign.providers.protocol import LLM, Embedder
from judgealign.rubric.model import Dimension, Rubric


def _view(ep: Episode) -> LabelView:
    return LabelView(id=ep.id, score=ep.score, rationale=ep.rationale)


def _existing_drafts(dm: DimensionMemory, skip: set[str] | None = None) -> list[Draft]:
    return [
        Draft(g.text, s, g.sources, vector=np.asarray(v), new=False)
        for g, s, v in zip(dm.guidelines, dm.guideline_scores, dm.guideline_vectors, strict=True)
        if not skip or g.id not in skip
    ]


def _rows(
    dm: DimensionMemory, skip: set[str] | None = None
) -> dict[str, tuple[Episode, np.ndarray]]:
    """Episode id -> (episode, its vector) for a dimension's episodes not in ``skip``."""
    return {
        e.id: (e, np.asarray(v))
        for e, v in zip(dm.episodes, dm.episode_vectors, strict=True)
        if not skip or e.id not in skip
    }


def _failures_without(dm: DimensionMemory, ids: set[str]) -> list[DistillFailure]:
    """The dimension's failed batches with ``ids`` taken out (emptied batches dropped)."""
    out = []
    for f in dm.failures:
        rest = tuple(x for x in f.labels if x not in ids)
        if rest:
            out.append(DistillFailure(dimension=f.dimension, labels=rest, error=f.error))
    return out


def _stack(rows: Sequence[np.ndarray], dim: int) -> np.ndarray:
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)


class MemoryBuilder:
    """Builds the dual memory from labels; only labels new to the memory cost calls.

    >>> from judgealign.testing import FakeEmbedder, FakeLLM
    >>> b = MemoryBuilder(reflection=FakeLLM(), embedder=FakeEmbedder())
    >>> b.max_guidelines
    6
    """

    def __init__(
        self,
        *,
        reflection: LLM,
        embedder: Embedder,
        max_guidelines: int = 6,
        merge_threshold: float = 0.9,
        batch_budget_tokens: int = 3000,
        seed: int = 0,
        distil: bool = True,
    ) -> None:
        self.reflection = reflection
        self.embedder = embedder
        self.max_guidelines = max_guidelines
        self.merge_threshold = merge_threshold
        self.batch_budget_tokens = batch_budget_tokens
        self.seed = seed
        # False: store episodes only, with no reflection call (a judge without semantic memory).
        self.distil = distil

    def _distiller(self) -> Distiller:
        return Distiller(
            self.reflection,
            batch_budget_tokens=self.batch_budget_tokens,
            max_guidelines=self.max_guidelines,
            seed=self.seed,
        )

    def _embed_for(self, dim: int) -> Embed:
        async def embed(texts: list[str]) -> np.ndarray:
            vecs = np.asarray(await self.embedder.embed(texts), dtype=np.float32)
            if vecs.shape != (len(texts), dim):
                raise DataError(
                    f"embedder {self.embedder.name!r} returned {vecs.shape[1]}-d vectors for "
                    f"guidelines but the items were embedded {dim}-d; use one embedder for both"
                )
            return vecs

        return embed

    # -- fit --------------------------------------------------------------------------------
    async def fit(
        self,
        rubric: Rubric,
        labels: Sequence[Label],
        *,
        texts: Mapping[str, str],
        embeddings: Mapping[str, np.ndarray],
        groups: Mapping[str, str],
        memory: AlignmentMemory | None,
        on_dimension: Callable[[str], None] | None = None,
    ) -> AlignmentMemory:
        """A new memory holding ``memory`` plus ``labels``.

        Labels already in ``memory`` with the same score and rationale cost nothing; a known
        id whose score or rationale changed is forgotten (with everything derived from it)
        and added again. ``texts``/``embeddings``/``groups`` are needed for items of new
        labels only (a changed label reuses its stored episode's). ``on_dimension`` is told
        each dimension as its guidelines are done (progress).
        """
        base = memory if memory is not None else AlignmentMemory.empty(self.embedder.name)
        base.check_embedder(self.embedder.name)
        old = {
            e.id: (e, dm.episode_vectors[n])
            for dm in base.dimensions.values()
            for n, e in enumerate(dm.episodes)
        }
        fresh: list[Label] = []
        changed: list[Label] = []
        for lb in labels:
            rubric.dimension(lb.dimension)
            known = old.get(lb.id)
            if known is None:
                fresh.append(lb)
            elif known[0].score != lb.score or known[0].rationale != lb.rationale:
                changed.append(lb)
        # Labels whose reflection failed before (a server error, an unreadable answer) are
        # distilled again: a transient failure must not be frozen into the memory.
        given = {lb.id for lb in labels}
        retry = {
            d: ids
            for d, dm in base.dimensions.items()
            if self.distil and (ids := {x for f in dm.failures for x in f.labels} & given)
        }
        if not fresh and not changed:
            if not retry:
                return base.model_copy()
            return await self._retry_failed(rubric, base, retry, on_dimension)
        episodes = [
            self._episode(lb, texts, embeddings, groups, old.get(lb.id))
            for lb in [*fresh, *changed]
        ]
        if changed:
            base = await self.forget(base, {lb.id for lb in changed}, rubric)
        dim = base.dim or int(episodes[0][1].shape[0])
        for ep, vec in episodes:
            if vec.shape != (dim,):
                raise DataError(
                    f"label {ep.id}: embedding has shape {vec.shape}, memory holds {dim}-d "
                    f"vectors from {base.embedder!r}; embed every item with one embedder"
                )
        by_dim: dict[str, list[tuple[Episode, np.ndarray]]] = {}
        for ep, vec in episodes:
            by_dim.setdefault(ep.dimension, []).append((ep, vec))
        names = sorted(by_dim)

        async def add(d: str) -> DimensionMemory:
            built = await self._add(rubric, base.dimension(d), d, by_dim[d], dim)
            if on_dimension is not None:
                on_dimension(d)
            return built

        built = await asyncio.gather(*(add(d) for d in names))
        dims = dict(base.dimensions)
        dims.update(zip(names, built, strict=True))
        memory = AlignmentMemory(embedder=base.embedder, dim=dim, dimensions=dims)
        # Only the failures recorded before this fit are retried (not the ones it just made).
        retry = {d: ids - {lb.id for lb in changed} for d, ids in retry.items()}
        retry = {d: ids for d, ids in retry.items() if ids}
        return await self._retry_failed(rubric, memory, retry, None) if retry else memory

    async def _retry_failed(
        self,
        rubric: Rubric,
        memory: AlignmentMemory,
        retry: Mapping[str, set[str]],
        on_dimension: Callable[[str], None] | None,
    ) -> AlignmentMemory:
        """``memory`` with the labels of earlier failed reflection batches distilled again
        into each dimension's guidelines; failures that recur are recorded anew."""

        async def one(name: str) -> DimensionMemory:
            dm = memory.dimensions[name]
            ids = retry[name]
            views = [_view(e) for e in dm.episodes if e.id in ids]
            drafts, fails = await self._distil_into(
                _existing_drafts(dm), rubric.dimension(name), views, memory.dim
            )
            if on_dimension is not None:
                on_dimension(name)
            failures = [*_failures_without(dm, ids), *fails]
            return self._dimension(name, drafts, _rows(dm), failures, memory.dim)

        names = sorted(retry)
        built = await asyncio.gather(*(one(d) for d in names))
        dims = dict(memory.dimensions)
        dims.update(zip(names, built, strict=True))
        return AlignmentMemory(embedder=memory.embedder, dim=memory.dim, dimensions=dims)

    def _episode(
        self,
        lb: Label,
        texts: Mapping[str, str],
        embeddings: Mapping[str, np.ndarray],
        groups: Mapping[str, str],
        previous: tuple[Episode, np.ndarray] | None,
    ) -> tuple[Episode, np.ndarray]:
        prev_ep = previous[0] if previous is not None else None
        text = texts.get(lb.item, prev_ep.text if prev_ep else None)
        vec = embeddings.get(lb.item)
        if vec is None and previous is not None:
            vec = previous[1]
        if text is None or vec is None:
            missing = "text" if text is None else "embedding"
            raise DataError(f"label {lb.id}: no {missing} for item {lb.item!r}; pass its item")
        ep = Episode(
            id=lb.id,
            item=lb.item,
            group=groups.get(lb.item, prev_ep.group if prev_ep else lb.item),
            dimension=lb.dimension,
            rater=lb.rater,
            text=text,
            score=lb.score,
            rationale=lb.rationale,
        )
        return ep, np.asarray(vec, dtype=np.float32).reshape(-1)

    async def _add(
        self,
        rubric: Rubric,
        dm: DimensionMemory,
        name: str,
        new: list[tuple[Episode, np.ndarray]],
        dim: int,
    ) -> DimensionMemory:
        dimension = rubric.dimension(name)
        kept = _existing_drafts(dm)
        failures: list[DistillFailure] = []
        if self.distil:
            kept, failures = await self._distil_into(
                kept, dimension, [_view(e) for e, _ in new], dim
            )
        rows = _rows(dm)
        rows.update({e.id: (e, v) for e, v in new})
        return self._dimension(name, kept, rows, [*dm.failures, *failures], dim)

    async def _distil_into(
        self, kept: list[Draft], dimension: Dimension, views: list[LabelView], dim: int
    ) -> tuple[list[Draft], list[DistillFailure]]:
        """``kept`` consolidated with the drafts distilled from ``views``, and every failed
        batch (distillation's, then consolidation's)."""
        distiller = self._distiller()
        drafts, failures = await distiller.distil(dimension, views)
        merged, more = await consolidate(
            [*kept, *drafts],
            dimension=dimension,
            distiller=distiller,
            embed=self._embed_for(dim),
            merge_threshold=self.merge_threshold,
            max_guidelines=self.max_guidelines,
        )
        return merged, [*failures, *more]

    @staticmethod
    def _dimension(
        name: str,
        drafts: Sequence[Draft],
        rows: Mapping[str, tuple[Episode, np.ndarray]],
        failures: Sequence[DistillFailure],
        dim: int,
    ) -> DimensionMemory:
        ids = sorted(rows)
        return DimensionMemory(
            guidelines=tuple(Guideline.create(name, d.text, d.sources) for d in drafts),
            guideline_scores=tuple(d.score for d in drafts),
            guideline_vectors=_stack([d.vector for d in drafts if d.vector is not None], dim),
            episodes=tuple(rows[i][0] for i in ids),
            episode_vectors=_stack([rows[i][1] for i in ids], dim),
            failures=tuple(failures),
        )

    # -- forget -----------------------------------------------------------------------------
    async def forget(
        self, memory: AlignmentMemory, label_ids: set[str], rubric: Rubric
    ) -> AlignmentMemory:
        """Remove labels: their episodes go, and every guideline that drew on one of them is
        re-distilled from its remaining sources only (dropped when none remain)."""
        unknown = sorted(set(label_ids) - memory.label_ids())
        if unknown:
            shown = ", ".join(unknown[:10]) + (
                f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else ""
            )
            raise DataError(
                f"cannot forget unknown label ids: {shown}; list them with `judgealign memory show`"
            )
        names = sorted(
            d
            for d, dm in memory.dimensions.items()
            if any(e.id in label_ids for e in dm.episodes)
            or any(set(g.sources) & label_ids for g in dm.guidelines)
        )
        built = await asyncio.gather(
            *(
                self._forget_dimension(rubric, memory.dimensions[d], d, label_ids, memory.dim)
                for d in names
            )
        )
        dims = dict(memory.dimensions)
        dims.update(zip(names, built, strict=True))
        dims = {d: dm for d, dm in dims.items() if dm.episodes or dm.guidelines}
        return AlignmentMemory(embedder=memory.embedder, dim=memory.dim, dimensions=dims)

    async def _forget_dimension(
        self, rubric: Rubric, dm: DimensionMemory, name: str, gone: set[str], dim: int
    ) -> DimensionMemory:
        rows = _rows(dm, skip=gone)
        affected = {g.id for g in dm.guidelines if set(g.sources) & gone}
        remaining = sorted({s for g in dm.guidelines if g.id in affected for s in g.sources} - gone)
        failures = _failures_without(dm, gone)
        drafts = _existing_drafts(dm, skip=affected)
        if affected:
            views = [_view(rows[s][0]) for s in remaining if s in rows]
            drafts, fails = await self._distil_into(drafts, rubric.dimension(name), views, dim)
            failures += fails
        return self._dimension(name, drafts, rows, failures, dim)
