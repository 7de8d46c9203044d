"""The Judge: an estimator whose ``fit`` builds a dual memory and ``predict`` scores items.

An unfitted judge is the zero-shot baseline, so baseline and aligned judges share one path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import DataError, NotFittedError
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import JudgeParams, Variant
from judgealign.judge.scoring import judge_one
from judgealign.judge.texts import ItemTexts
from judgealign.providers.protocol import LLM, Embedder
from judgealign.providers.types import Usage
from judgealign.rubric.model import Rubric

if TYPE_CHECKING:
    from judgealign.memory.builder import MemoryBuilder
    from judgealign.memory.store import AlignmentMemory

OnJudgement = Callable[[Judgement], None]


class Judge:
    """One judge per rubric dimension, sharing providers and memory.

    >>> from judgealign.rubric import load_rubric
    >>> from judgealign.data.item import Item
    >>> judge = Judge(load_rubric("ml-notebook"), model="fake:constant")
    >>> item = Item(id="t", output="print('hi')")
    >>> [j.score for j in judge.predict([item], dimensions=["model_use"])]
    [2.0]
    """

    def __init__(
        self,
        rubric: Rubric,
        params: JudgeParams | None = None,
        *,
        llm: LLM | None = None,
        reflection_llm: LLM | None = None,
        embedder: Embedder | None = None,
        cache_dir: Path | None = None,
        concurrency: int = 4,
        retries: int = 3,
        **overrides: Any,
    ) -> None:
        self.rubric = rubric
        self.params = (params or JudgeParams()).model_copy(update=overrides)
        JudgeParams.model_validate(self.params.model_dump())
        self.cache_dir = cache_dir
        self.concurrency = concurrency
        self.retries = retries
        self._llm = llm
        self._reflection_llm = reflection_llm
        self._embedder = embedder
        self.memory_: AlignmentMemory | None = None
        self._texts = ItemTexts()

    # -- providers --------------------------------------------------------------------------
    def _resolve_llm(self, name_or_llm: str | LLM) -> LLM:
        # Objects passed in are wrapped too (a ManagedLLM is kept as is), so every judge gets
        # the same cache, retry, limit and accounting behaviour.
        from judgealign.providers.registry import resolve_llm

        return resolve_llm(
            name_or_llm,
            cache_dir=self.cache_dir,
            retries=self.retries,
            concurrency=self.concurrency,
        )

    @property
    def llm(self) -> LLM:
        if self._llm is None or not hasattr(self._llm, "usage"):
            self._llm = self._resolve_llm(self._llm or self.params.model)
        return self._llm

    @property
    def reflection_llm(self) -> LLM:
        if self._reflection_llm is None or not hasattr(self._reflection_llm, "usage"):
            name = self.params.reflection_model
            if self._reflection_llm is not None:
                self._reflection_llm = self._resolve_llm(self._reflection_llm)
            elif name in (None, self.params.model):
                self._reflection_llm = self.llm
            else:
                assert name is not None
                self._reflection_llm = self._resolve_llm(name)
        return self._reflection_llm

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None or not hasattr(self._embedder, "usage"):
            from judgealign.providers.registry import resolve_embedder

            self._embedder = resolve_embedder(
                self._embedder or self.params.embedder, cache_dir=self.cache_dir
            )
        return self._embedder

    def usage(self) -> Usage:
        """Usage accumulated by this judge's providers (judge + reflection when separate)."""
        total = Usage()
        seen: set[int] = set()
        for llm in (self._llm, self._reflection_llm):
            if llm is not None and id(llm) not in seen:
                seen.add(id(llm))
                total = total + getattr(llm, "usage", Usage())
        return total

    # -- variants ---------------------------------------------------------------------------
    def variant(self, variant: Variant) -> Judge:
        """A copy with the given ablation switches that shares providers, memory and caches."""
        # Resolve shared providers first so that copies share caches and usage counters.
        _ = self.llm
        if self.memory_ is not None:
            _ = self.embedder
        other = Judge.__new__(Judge)
        other.__dict__.update(self.__dict__)
        other.params = self.params.for_variant(variant)
        return other

    @property
    def is_fitted(self) -> bool:
        return self.memory_ is not None

    # -- fit --------------------------------------------------------------------------------
    def fit(self, labels: Sequence[Label], items: Iterable[Item]) -> Judge:
        """Build (or extend) the memory from expert labels. See ``afit``."""
        return asyncio.run(self.afit(labels, items))

    async def afit(
        self,
        labels: Sequence[Label],
        items: Iterable[Item],
        *,
        on_judgement: OnJudgement | None = None,
    ) -> Judge:
        """Distil guidelines and store episodes; only labels new to the memory cost calls."""
        by_id = {it.id: it for it in items}
        self._check_labels(labels, by_id)
        known = self.memory_.label_ids() if self.memory_ is not None else set()
        new = [lb for lb in labels if lb.id not in known]
        needed = sorted({lb.item for lb in new})
        texts = {
            i: self._texts.episode_text(by_id[i], self.params.episode_budget_tokens) for i in needed
        }
        vectors = await self._texts.embed(
            self.embedder, [by_id[i] for i in needed], self.params.item_budget_tokens
        )
        judge_scores: dict[str, float | None] = {}
        if (self.params.calibrate or self.params.blend) and new:
            baseline = self.variant("baseline")
            pairs = sorted({(lb.item, lb.dimension) for lb in new})
            results = await baseline._judge_pairs(pairs, by_id, on_judgement)
            scores = {j.key: j.score for j in results}
            judge_scores = {lb.id: scores.get((lb.item, lb.dimension)) for lb in new}
        builder = self._builder(distil=self.params.semantic)
        self.memory_ = await builder.fit(
            self.rubric,
            labels,
            texts=texts,
            embeddings=vectors,
            groups={i: by_id[i].group_id for i in needed},
            judge_scores=judge_scores,
            memory=self.memory_,
        )
        self._fit_blends()
        if self.params.recalibrate:
            await self.arecalibrate(by_id.values(), on_judgement=on_judgement)
        return self

    def _builder(self, *, distil: bool) -> MemoryBuilder:
        from judgealign.memory.builder import MemoryBuilder

        return MemoryBuilder(
            reflection=self.reflection_llm,
            embedder=self.embedder,
            max_guidelines=self.params.max_guidelines,
            merge_threshold=self.params.merge_threshold,
            batch_budget_tokens=self.params.reflection_batch_tokens,
            seed=self.params.seed,
            distil=distil,
        )

    def _fit_blends(self) -> None:
        # Pure numpy over the stored episodes: refitted from all of them after every change.
        if self.params.blend and self.memory_ is not None:
            scales = {d.id: d.scale for d in self.rubric.dimensions}
            self.memory_ = self.memory_.fit_blends(
                scales, k=self.params.blend_k, seed=self.params.seed
            )

    def _check_labels(self, labels: Sequence[Label], items: Mapping[str, Item]) -> None:
        seen: set[str] = set()
        for lb in labels:
            dim = self.rubric.dimension(lb.dimension)
            dim.scale.check(lb.score, where=f"label {lb.id}: ")
            if lb.item not in items:
                raise DataError(f"label {lb.id}: item {lb.item!r} is not among the given items")
            if lb.id in seen:
                raise DataError(
                    f"label {lb.id} is given twice; keep one per item, dimension, rater"
                )
            seen.add(lb.id)

    def forget(self, label_ids: Collection[str]) -> Judge:
        """Remove labels and everything derived from them (see ``aforget``)."""
        return asyncio.run(self.aforget(label_ids))

    async def aforget(self, label_ids: Collection[str]) -> Judge:
        if self.memory_ is None:
            raise NotFittedError("forget needs a fitted judge; run fit first")
        builder = self._builder(distil=True)
        self.memory_ = await builder.forget(self.memory_, set(label_ids), self.rubric)
        self._fit_blends()
        if calibrations := self.memory_.calibrations():
            # Refit from the points left (the forgotten labels' are dropped): no model call.
            await self.arecalibrate(
                (), variants=sorted({cast(Variant, v) for c in calibrations.values() for v in c})
            )
        return self

    # -- calibration --------------------------------------------------------------------------
    def recalibrate(
        self, items: Iterable[Item], variants: Sequence[Variant] | None = None
    ) -> Judge:
        """Fit the score calibrations of ``variants`` (see ``arecalibrate``)."""
        return asyncio.run(self.arecalibrate(items, variants=variants))

    async def arecalibrate(
        self,
        items: Iterable[Item],
        *,
        variants: Sequence[Variant] | None = None,
        on_judgement: OnJudgement | None = None,
    ) -> Judge:
        """Score the labelled items as held out and fit each dimension's score calibration.

        Each labelled item in ``items`` is judged by the aligned variant with its own input
        group left out of retrieval (as a test item of grouped folds would be); the
        ``(score, expert score)`` pairs fit a monotone affine map per dimension
        (memory/calibration.py) that ``predict`` applies when ``params.recalibrate`` is set.
        Labels scored before are not scored again; labels whose item is not in ``items``
        keep no point. ``variants`` defaults to this judge's own (the runner of an
        evaluation calibrates every aligned variant it scores).

        >>> judge.recalibrate(items, variants=["full", "episodic"])  # doctest: +SKIP
        """
        from judgealign.judge.recalibration import fit_calibrations

        if self.memory_ is None:
            raise NotFittedError("recalibrate needs a fitted judge; run fit first")
        wanted = [v for v in (variants or [self.params.variant]) if v != "baseline"]
        self.memory_ = await fit_calibrations(self, items, wanted, on_judgement)
        return self

    # -- predict ----------------------------------------------------------------------------
    def predict(
        self,
        items: Iterable[Item],
        dimensions: Sequence[str] | None = None,
        *,
        on_judgement: OnJudgement | None = None,
    ) -> list[Judgement]:
        """Score every item on every (given) dimension. See ``apredict``."""
        return asyncio.run(self.apredict(items, dimensions, on_judgement=on_judgement))

    async def apredict(
        self,
        items: Iterable[Item],
        dimensions: Sequence[str] | None = None,
        *,
        on_judgement: OnJudgement | None = None,
        skip: Collection[tuple[str, str]] = (),
    ) -> list[Judgement]:
        """Judgements item-major (one item's dimensions in a row, for KV-cache reuse).

        ``skip`` holds (item, dimension) pairs already judged (resume); they are not redone.
        """
        by_id = {it.id: it for it in items}
        dims = list(dimensions) if dimensions is not None else list(self.rubric.dimension_ids)
        for d in dims:
            self.rubric.dimension(d)
        done = set(skip)
        pairs = [(i, d) for i in by_id for d in dims if (i, d) not in done]
        return await self._judge_pairs(pairs, by_id, on_judgement)

    async def _judge_pairs(
        self,
        pairs: Sequence[tuple[str, str]],
        items: Mapping[str, Item],
        on_judgement: OnJudgement | None,
        *,
        leave_group_out: bool = False,
    ) -> list[Judgement]:
        uses_memory = self.memory_ is not None and (self.params.semantic or self.params.episodic)
        vectors: dict[str, np.ndarray] = {}
        if uses_memory:
            assert self.memory_ is not None
            # Cosines between two embedders' spaces are meaningless: refuse rather than retrieve
            # the wrong examples silently.
            self.memory_.check_embedder(self.embedder.name, source="judge memory")
            needed = sorted({i for i, _ in pairs})
            vectors = await self._texts.embed(
                self.embedder, [items[i] for i in needed], self.params.item_budget_tokens
            )
        # Bounded fan-out keeps memory flat on big runs; the provider limits real concurrency.
        gate = asyncio.Semaphore(max(1, self.concurrency) * 4)

        async def one(item_id: str, dim: str) -> Judgement:
            async with gate:
                j = await judge_one(
                    self, items[item_id], dim, vectors.get(item_id), leave_group_out=leave_group_out
                )
            if on_judgement is not None:
                on_judgement(j)
            return j

        return list(await asyncio.gather(*(one(i, d) for i, d in pairs)))
