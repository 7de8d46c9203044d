"""The Judge: an estimator whose ``fit`` builds a dual memory and ``predict`` scores items.

Configuration follows scikit-learn: parameters in the constructor, ``get_params`` /
``set_params``, ``clone`` for an unfitted copy; work happens in methods. An unfitted judge
(or one whose ``variant`` is ``baseline``) is the zero-shot judge, so the baseline and the
aligned judges share one path. ``Judge`` delegates: provider names are resolved by
``judgealign.providers``, one judgement is ``scoring.Scorer``, fitting is ``fitting``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import ConfigError, NotFittedError
from judgealign.judge.fitting import OnDimension, fit_memory, forget_labels
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import JudgeParams, Variant
from judgealign.judge.scoring import Scorer
from judgealign.judge.texts import ItemTexts
from judgealign.memory.store import AlignmentMemory
from judgealign.providers.defaults import default_embedder, default_model
from judgealign.providers.protocol import LLM, Embedder
from judgealign.providers.types import Usage
from judgealign.rubric.model import Rubric
from judgealign.sync import run_sync

OnJudgement = Callable[[Judgement], None]
ModelLike = str | LLM | None
EmbedderLike = str | Embedder | None

# Constructor parameters, in order (get_params, clone, persistence).
PARAM_NAMES = (
    "rubric",
    "model",
    "reflection_model",
    "embedder",
    "variant",
    "k",
    "max_guidelines",
    "context_ratio",
    "similarity_floor",
    "item_budget_tokens",
    "max_tokens",
    "seed",
)
_PROVIDER_PARAMS = ("model", "reflection_model", "embedder")


def provider_spec(value: str | LLM | Embedder | None) -> str | None:
    """A provider's name as a judge file stores it: the string given, or the full spec a
    managed stack was made from."""
    if value is None or isinstance(value, str):
        return value
    # A managed stack knows the full ``provider:model?params`` it was made from.
    spec = getattr(value, "spec", None)
    return spec if isinstance(spec, str) else value.name


class Judge:
    """One judge per rubric dimension, sharing providers and memory.

    ``model``, ``reflection_model`` and ``embedder`` take a provider name
    (``openai:gpt-4.1-mini``, ``local:default``, ``fake:mimic``) or a provider object (e.g.
    ``judgealign.resolve_llm(name, cache_dir=...)`` for a disk cache); ``None`` means the
    embedded local model, or a one-line error when it is not installed. ``variant`` chooses
    the memory the judge reads: ``full``, ``semantic`` (guidelines), ``episodic`` (examples)
    or ``baseline`` (none).

    >>> from judgealign.rubric import load_rubric
    >>> from judgealign.data.item import Item
    >>> judge = Judge(load_rubric("ml-notebook"), model="fake:constant")
    >>> [j.score for j in judge.predict([Item(id="t", output="print('hi')")], ["model_use"])]
    [2.0]
    >>> len(judge.get_params())
    12
    """

    def __init__(
        self,
        rubric: Rubric,
        *,
        model: ModelLike = None,
        reflection_model: ModelLike = None,
        embedder: EmbedderLike = None,
        variant: Variant = "full",
        k: int = 2,
        max_guidelines: int = 6,
        context_ratio: float | None = 0.5,
        similarity_floor: float = 0.2,
        item_budget_tokens: int = 1500,
        max_tokens: int = 400,
        seed: int = 0,
    ) -> None:
        self.rubric = rubric
        self.model = model
        self.reflection_model = reflection_model
        self.embedder = embedder
        self.variant = variant
        self.k = k
        self.max_guidelines = max_guidelines
        self.context_ratio = context_ratio
        self.similarity_floor = similarity_floor
        self.item_budget_tokens = item_budget_tokens
        self.max_tokens = max_tokens
        self.seed = seed
        self.memory_: AlignmentMemory | None = None
        self._resolved: dict[str, Any] = {}
        self._texts = ItemTexts()
        _ = self.params  # validate now: a bad value fails at construction, not mid-run

    # -- configuration ----------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters (scikit-learn convention)."""
        return {name: getattr(self, name) for name in PARAM_NAMES}

    def set_params(self, **params: Any) -> Judge:
        """Change parameters in place; a fitted memory is kept (see ``fit`` for what a
        changed parameter means for it). Unknown names are a ConfigError."""
        unknown = sorted(set(params) - set(PARAM_NAMES))
        if unknown:
            raise ConfigError(
                f"unknown judge parameter(s) {', '.join(unknown)}; "
                f"choose from {', '.join(PARAM_NAMES)}"
            )
        old = self.get_params()
        for name, value in params.items():
            setattr(self, name, value)
        try:
            _ = self.params
        except ConfigError:
            for name, value in old.items():
                setattr(self, name, value)
            raise
        for name in _PROVIDER_PARAMS:
            if name in params and params[name] is not old[name]:
                self._resolved.clear()  # re-resolve lazily, from the new names
                break
        return self

    @property
    def params(self) -> JudgeParams:
        """The persisted configuration (provider names instead of objects)."""
        values = {n: getattr(self, n) for n in PARAM_NAMES if n != "rubric"}
        for n in _PROVIDER_PARAMS:
            values[n] = provider_spec(values[n])
        try:
            return JudgeParams(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"judge parameter {where}: {err['msg']}") from None

    # -- providers --------------------------------------------------------------------------
    @property
    def llm_(self) -> LLM:
        """The judge model, resolved (cache, retries, limits and accounting around it)."""
        if "llm" not in self._resolved:
            from judgealign.providers.registry import resolve_llm

            self._resolved["llm"] = resolve_llm(self.model or default_model())
        return self._resolved["llm"]  # type: ignore[no-any-return]

    @property
    def reflection_llm_(self) -> LLM:
        """The model that distils guidelines (the judge model unless one is named)."""
        if "reflection" not in self._resolved:
            from judgealign.providers.registry import resolve_llm

            own = self.reflection_model
            # A name equal to the judge model's means the same provider; objects only by
            # identity (two fakes may share a name and still behave differently).
            same = own is None or own is self.model or own == provider_spec(self.model)
            self._resolved["reflection"] = self.llm_ if same else resolve_llm(own)  # type: ignore[arg-type]
        return self._resolved["reflection"]  # type: ignore[no-any-return]

    @property
    def embedder_(self) -> Embedder:
        """The embedder, resolved (needed to fit and to retrieve examples)."""
        if "embedder" not in self._resolved:
            from judgealign.providers.registry import resolve_embedder

            self._resolved["embedder"] = resolve_embedder(self.embedder or default_embedder())
        return self._resolved["embedder"]  # type: ignore[no-any-return]

    def usage(self) -> Usage:
        """Usage accumulated by this judge's providers (judge + reflection when separate)."""
        # Provider objects passed in count from the start (their counters may be shared with
        # other judges); names are resolved only by use, so an unused judge reports zero.
        if not isinstance(self.model, str | None):
            _ = self.llm_
        if not isinstance(self.reflection_model, str | None):
            _ = self.reflection_llm_
        total = Usage()
        seen: set[int] = set()
        for key in ("llm", "reflection"):
            llm = self._resolved.get(key)
            if llm is not None and id(llm) not in seen:
                seen.add(id(llm))
                total = total + getattr(llm, "usage", Usage())
        return total

    def shared_providers(self, *, aligned: bool) -> dict[str, Any]:
        """This judge's providers, resolved, as parameters for a clone that is to share their
        caches and usage counters; ``aligned`` adds the reflection model and the embedder
        (a zero-shot clone needs neither, and a missing embedder must not stop it)."""
        out: dict[str, Any] = {"model": self.llm_}
        if aligned:
            out["reflection_model"] = self.reflection_llm_
            out["embedder"] = self.embedder_
        return out

    # -- ablations --------------------------------------------------------------------------
    def ablation(self, variant: Variant) -> Judge:
        """A clone reading only part of this judge's memory (``baseline``: none of it).

        It shares the fitted memory and the resolved providers, so caches and usage
        counters are shared too; fitting the ablation does not change this judge.
        """
        aligned = self.memory_ is not None or "embedder" in self._resolved
        other = clone(self, variant=variant, **self.shared_providers(aligned=aligned))
        other.memory_ = self.memory_
        other._texts = self._texts
        return other

    @property
    def is_fitted(self) -> bool:
        return self.memory_ is not None

    # -- fit --------------------------------------------------------------------------------
    def fit(
        self,
        labels: Sequence[Label],
        items: Iterable[Item],
        *,
        on_dimension: OnDimension | None = None,
    ) -> Judge:
        """Build (or extend) the memory from expert labels. See ``afit``; works inside a
        running event loop (Jupyter) too."""
        return run_sync(self.afit(labels, items, on_dimension=on_dimension))

    async def afit(
        self,
        labels: Sequence[Label],
        items: Iterable[Item],
        *,
        on_dimension: OnDimension | None = None,
    ) -> Judge:
        """Distil guidelines and store episodes; only labels new to the memory cost calls.

        Guidelines are distilled when ``variant`` reads them; ``on_dimension(d)`` is called
        as each dimension's guidelines are done.
        """
        self.memory_ = await fit_memory(
            self.rubric,
            self.params,
            labels,
            list(items),
            reflection=self.reflection_llm_,
            embedder=self.embedder_,
            texts=self._texts,
            memory=self.memory_,
            on_dimension=on_dimension,
        )
        return self

    def forget(self, label_ids: Collection[str]) -> Judge:
        """Remove labels and everything derived from them (see ``aforget``)."""
        return run_sync(self.aforget(label_ids))

    async def aforget(self, label_ids: Collection[str]) -> Judge:
        """Drop the labels' episodes and re-distil every guideline that drew on them from
        its remaining sources (dropped when none remain): nothing derived survives."""
        if self.memory_ is None:
            raise NotFittedError("forget needs a fitted judge; run fit first")
        self.memory_ = await forget_labels(
            self.rubric,
            self.params,
            self.memory_,
            label_ids,
            reflection=self.reflection_llm_,
            embedder=self.embedder_,
        )
        return self

    # -- predict ----------------------------------------------------------------------------
    def predict(
        self,
        items: Iterable[Item],
        dimensions: Sequence[str] | None = None,
        *,
        on_judgement: OnJudgement | None = None,
    ) -> list[Judgement]:
        """Score every item on every (given) dimension. See ``apredict``; works inside a
        running event loop (Jupyter) too."""
        return run_sync(self.apredict(items, dimensions, on_judgement=on_judgement))

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
        A failed judgement is returned with its error, never raised.
        """
        by_id = {it.id: it for it in items}
        dims = list(dimensions) if dimensions is not None else list(self.rubric.dimension_ids)
        for d in dims:
            self.rubric.dimension(d)
        done = set(skip)
        pairs = [(i, d) for i in by_id for d in dims if (i, d) not in done]
        params = self.params
        memory = self.memory_ if params.reads_memory else None
        vectors = {}
        if memory is not None:
            # Cosines between two embedders' spaces are meaningless: refuse rather than
            # retrieve the wrong examples silently.
            memory.check_embedder(self.embedder_.name, source="judge memory")
            needed = sorted({i for i, _ in pairs})
            vectors = await self._texts.embed(
                self.embedder_, [by_id[i] for i in needed], params.item_budget_tokens
            )
        scorer = Scorer(self.rubric, params, self.llm_, memory, self._texts)
        # Bounded fan-out keeps memory flat on big runs; the provider limits real concurrency.
        gate = asyncio.Semaphore(32)

        async def one(item_id: str, dim: str) -> Judgement:
            async with gate:
                j = await scorer.judge(by_id[item_id], dim, vectors.get(item_id))
            if on_judgement is not None:
                on_judgement(j)
            return j

        return list(await asyncio.gather(*(one(i, d) for i, d in pairs)))

    def __repr__(self) -> str:
        def shown_value(name: str) -> object:
            value = getattr(self, name)
            return provider_spec(value) if name in _PROVIDER_PARAMS else value

        shown = ", ".join(
            f"{n}={shown_value(n)!r}" for n in PARAM_NAMES[1:] if getattr(self, n) is not None
        )
        return f"Judge({self.rubric.id!r}, {shown})"


def clone(judge: Judge, **params: Any) -> Judge:
    """An unfitted copy of ``judge`` with the same parameters, ``params`` replacing some.

    >>> from judgealign.rubric import load_rubric
    >>> base = clone(Judge(load_rubric("ml-notebook"), model="fake:mimic"), variant="baseline")
    >>> (base.variant, base.is_fitted)
    ('baseline', False)
    """
    values = judge.get_params()
    unknown = sorted(set(params) - set(values))
    if unknown:
        raise ConfigError(f"unknown judge parameter(s) {', '.join(unknown)}")
    values.update(params)
    return type(judge)(**values)
