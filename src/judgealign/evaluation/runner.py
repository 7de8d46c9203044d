"""Cross-validated evaluation: fit on training folds, score the held-out fold, never leak."""

from __future__ import annotations

import asyncio
import hashlib
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from judgealign.data.files import write_text_atomic
from judgealign.data.item import Item
from judgealign.data.label import Label, item_of
from judgealign.errors import ConfigError, DataError, JudgeAlignError
from judgealign.evaluation.store import JudgementStore, check_run_settings
from judgealign.judge.judge import Judge, clone
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import VARIANTS, Variant
from judgealign.judge.persistence import load_judge, save_judge
from judgealign.memory.store import AlignmentMemory, ReflectionGap
from judgealign.progress import NoProgress, Progress
from judgealign.providers.types import Usage
from judgealign.sync import run_sync


class LeakageError(JudgeAlignError):
    """A judgement saw an episode or guideline derived from its own test fold."""


Folds = list[tuple[list[str], list[str]]]
Judgements = dict[str, dict[tuple[str, str], Judgement]]  # variant -> (item, dim) -> judgement


@dataclass
class RepeatData:
    """One repeat of the cross-validation: its folds (dealt with ``fold_seed``) and what its
    fold judges learned and judged. Every repeat holds the baseline's judgements too (judged
    once, shared: the baseline has nothing to fit)."""

    fold_seed: int
    folds: Folds
    fold_of: dict[str, int]
    judgements: Judgements
    memories: dict[int, AlignmentMemory] = field(default_factory=dict)
    reflection_gaps: dict[int, dict[str, ReflectionGap]] = field(default_factory=dict)


@dataclass
class EvaluationData:
    """Everything the statistics need, collected by the runner. The top-level folds,
    judgements and memories are the first repeat's; ``repeats`` lists every repeat (the first
    included, sharing those objects)."""

    folds: Folds
    fold_of: dict[str, int]
    expert: dict[tuple[str, str], float]  # (item, dimension) -> mean expert score
    judgements: Judgements
    curve: dict[tuple[int, str], dict[tuple[str, str], Judgement]] = field(default_factory=dict)
    curve_sizes: dict[int, float] = field(default_factory=dict)  # n -> mean labels per dim
    usage_alignment: Usage = field(default_factory=Usage)
    usage_scoring: Usage = field(default_factory=Usage)
    leakage_checked: bool = False
    reflection_gaps: dict[int, dict[str, ReflectionGap]] = field(default_factory=dict)
    memories: dict[int, AlignmentMemory] = field(default_factory=dict)  # fold -> its memory
    repeats: list[RepeatData] = field(default_factory=list)

    def all_repeats(self) -> list[RepeatData]:
        """Every repeat; the top-level fields as the one repeat when none were recorded."""
        if self.repeats:
            return self.repeats
        return [
            RepeatData(
                fold_seed=-1,
                folds=self.folds,
                fold_of=self.fold_of,
                judgements=self.judgements,
                memories=self.memories,
                reflection_gaps=self.reflection_gaps,
            )
        ]


def _usage_path(judge_path: Path) -> Path:
    """Where a fitted fold judge's alignment usage is kept, next to the judge file."""
    return judge_path.with_suffix(".usage.json")


def expert_scores(labels: Sequence[Label]) -> dict[tuple[str, str], float]:
    """Mean over raters per (item, dimension). N/A wins only when every rater said N/A."""
    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for lb in labels:
        by[(lb.item, lb.dimension)].append(lb.score)
    return {k: float(np.mean(v)) for k, v in by.items()}


def check_no_leak(judge: Judge, judgements: Sequence[Judgement], train_items: set[str]) -> None:
    """Every retrieved episode and every guideline source must come from the training folds."""
    if judge.memory_ is None:
        return
    memory = judge.memory_
    sources = memory.guideline_sources()
    # Trust the memory's own record of each label's item; parse the id only as a fallback.
    item_of_label = {e.id: e.item for d in memory.dimensions for e in memory.episodes(d)}

    def item(label_id: str) -> str:
        return item_of_label.get(label_id) or item_of(label_id)

    for j in judgements:
        for ep in j.episodes:
            if item(ep) not in train_items:
                raise LeakageError(
                    f"judgement of {j.item}/{j.dimension} retrieved test episode {ep}"
                )
        for gid in j.guidelines:
            for src in sources.get(gid, ()):
                if item(src) not in train_items:
                    raise LeakageError(
                        f"judgement of {j.item}/{j.dimension} used guideline {gid} "
                        f"distilled from test label {src}"
                    )


class Evaluator:
    """Runs a judge's baseline and aligned variants under grouped k-fold cross-validation.

    ``judge`` is the template: each fold fits a clone of it on the training folds, and every
    requested variant is an ablation of that fitted clone (one fit serves them all). The
    baseline needs no training, so it is computed once for every item and reused by every
    fold. With ``run_dir`` every judgement is appended to ``judgements.jsonl`` and fitted
    judges go to ``judges/``: an interrupted run resumes where it stopped and recomputes
    nothing. ``only_folds`` runs just those folds (their fits, their held-out judgements and
    their learning-curve points, with the same splits and label draws as a full run, in every
    repeat): what a Spark task runs for one fold
    (``judgealign.integrations.spark.evaluate_on_spark``).

    ``repeats`` > 1 runs the whole cross-validation again with other folds: repeat r deals
    the groups with fold seed ``seed + r`` and fits its fold judges with judge seed
    ``seed + r`` (reflection batches and sampling), so each repeat's judges are another draw
    of alignment. Every repeat refits every fold and rescores the aligned variants (the
    baseline is judged once): about ``repeats`` times the cost of the aligned part. Repeat r's
    judges are saved as ``judges/fold-N-rR.judge.json``; repeats may be added on resume.
    """

    def __init__(
        self,
        judge: Judge,
        *,
        folds: int = 4,
        variants: Sequence[Variant] = VARIANTS,
        seed: int = 0,
        run_dir: Path | None = None,
        concurrency: int = 4,
        learning_curve: Sequence[int] = (),
        progress: Progress | None = None,
        retry_failed: bool = False,
        repeats: int = 1,
        only_folds: Collection[int] | None = None,
    ) -> None:
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
        if repeats < 1:
            raise ConfigError(f"repeats must be at least 1, got {repeats}")
        self.judge = judge
        self.rubric = judge.rubric
        self.folds = folds
        self.variants = list(dict.fromkeys(["baseline", *variants]))
        self.seed = seed
        self.run_dir = run_dir
        self.concurrency = concurrency
        self.learning_curve = sorted(set(learning_curve))
        self.progress: Progress = progress or NoProgress()
        self.retry_failed = retry_failed
        self.repeats = repeats
        self.only_folds = None if only_folds is None else set(only_folds)
        self._resolved_template: Judge | None = None
        self._alignment_usage = Usage()

    @property
    def _distils(self) -> bool:
        # Reflection only when a requested variant reads guidelines: an episodic-only ablation
        # must not pay for (or wait on) distillation it never uses.
        return any(v in ("semantic", "full") for v in self.variants)

    def _template(self) -> Judge:
        """The judge every fold clones, with its providers resolved once so that folds share
        caches and usage counters."""
        if self._resolved_template is None:
            aligned = any(v != "baseline" for v in self.variants)
            self._resolved_template = clone(
                self.judge, **self.judge.shared_providers(aligned=aligned)
            )
        return self._resolved_template

    def _fold_judge(self, repeat: int = 0) -> Judge:
        variant = "full" if self._distils else "episodic"
        if repeat == 0:
            return clone(self._template(), variant=variant)
        return clone(self._template(), variant=variant, seed=self.seed + repeat)

    def run(self, items: Sequence[Item], labels: Sequence[Label]) -> EvaluationData:
        return run_sync(self.arun(items, labels))

    async def arun(self, items: Sequence[Item], labels: Sequence[Label]) -> EvaluationData:
        from judgealign.data.folds import grouped_kfold

        dims = set(self.rubric.dimension_ids)
        labels = [lb for lb in labels if lb.dimension in dims]
        labelled = {lb.item for lb in labels}
        items = [it for it in items if it.id in labelled]
        if not items:
            raise DataError("no item has a label on the rubric's dimensions; check item ids")
        by_id = {it.id: it for it in items}
        expert = expert_scores(labels)
        pairs_of: dict[str, list[str]] = defaultdict(list)
        for item_id, dim in sorted(expert):
            pairs_of[item_id].append(dim)
        if self.run_dir is not None:
            check_run_settings(self.run_dir, self._settings(items, labels))
        store = JudgementStore(
            self.run_dir / "judgements.jsonl" if self.run_dir else None,
            retry_failed=self.retry_failed,
        )
        aligned: list[Variant] = [v for v in self.variants if v != "baseline"]  # type: ignore[misc]
        folds = grouped_kfold(items, self.folds, self.seed)
        curve = len(self.learning_curve) if aligned else 0
        # One bar over judgements and labels aligned, so the estimate of the time left counts
        # the folds still to align (an aligned label costs about one judgement's time).
        fits = sum(len(tr) for tr, _ in folds) if aligned else 0
        total = len(expert) * (len(self.variants) + curve) + fits * (1 + curve)
        total += (self.repeats - 1) * (len(expert) * len(aligned) + fits)
        self.progress.start("evaluating", total)
        data: EvaluationData | None = None
        for r in range(self.repeats):
            repeat_folds = folds if r == 0 else grouped_kfold(items, self.folds, self.seed + r)
            run = await self._repeat(r, repeat_folds, labels, by_id, pairs_of, store)
            if data is not None and "baseline" in self.variants:
                run.judgements["baseline"] = data.judgements["baseline"]
            if data is None:
                data = EvaluationData(
                    folds=run.folds,
                    fold_of=run.fold_of,
                    expert=expert,
                    judgements=run.judgements,
                    memories=run.memories,
                    reflection_gaps=run.reflection_gaps,
                )
            data.repeats.append(run)
        assert data is not None
        data.leakage_checked = bool(aligned)
        if self.learning_curve and aligned:
            await self._curve(labels, by_id, folds, pairs_of, store, data)
        data.usage_alignment = self._alignment_usage
        # Summed over the judgements themselves, stored ones included: a resumed run reports
        # what every process spent on them, not only the last one (provider counters would).
        # The baseline's are shared by every repeat: counted once.
        data.usage_scoring = sum(
            (
                j.usage
                for by in [
                    *(
                        by
                        for n, run in enumerate(data.repeats)
                        for v, by in run.judgements.items()
                        if n == 0 or v != "baseline"
                    ),
                    *data.curve.values(),
                ]
                for j in by.values()
            ),
            Usage(),
        )
        return data

    async def _repeat(
        self,
        repeat: int,
        folds: Folds,
        labels: Sequence[Label],
        by_id: dict[str, Item],
        pairs_of: dict[str, list[str]],
        store: JudgementStore,
    ) -> RepeatData:
        """One pass of the cross-validation over ``folds``; the baseline only in the first
        (later repeats reuse its judgements)."""
        fold_of = {i: f for f, (_, test) in enumerate(folds) for i in test}
        run = RepeatData(
            fold_seed=self.seed + repeat,
            folds=folds,
            fold_of=fold_of,
            judgements={v: {} for v in self.variants},
        )
        template = self._template()
        aligned: list[Variant] = [v for v in self.variants if v != "baseline"]  # type: ignore[misc]
        tag = f"-r{repeat}" if repeat else ""
        status = f" (repeat {repeat + 1} of {self.repeats})" if self.repeats > 1 else ""
        for f, (train_ids, test_ids) in enumerate(folds):
            if not self._runs(f):
                continue
            train = set(train_ids)
            judges: dict[str, tuple[Judge, int]] = {}
            if "baseline" in self.variants and repeat == 0:
                # The baseline needs no training: fold -1 in the store; each item is judged
                # once (in its own test fold) and reused by every comparison and repeat.
                judges["baseline"] = (template.ablation("baseline"), -1)
            fitted = None
            if aligned:
                train_labels = [lb for lb in labels if lb.item in train]
                fitted = await self._fitted(
                    f,
                    train_labels,
                    [by_id[i] for i in train_ids],
                    tag=tag,
                    units=len(train_ids),
                    repeat=repeat,
                    status=status,
                )
                if fitted.memory_ is not None:
                    run.memories[f] = fitted.memory_
                    if gaps := fitted.memory_.reflection_gaps():
                        run.reflection_gaps[f] = gaps
                judges.update({v: (fitted.ablation(v), f) for v in aligned})
            test_items = [by_id[i] for i in test_ids]
            await self._predict(judges, test_items, pairs_of, store, run.judgements, repeat=repeat)
            if fitted is not None:
                for v in aligned:
                    check_no_leak(
                        fitted,
                        [run.judgements[v][(i, d)] for i in test_ids for d in pairs_of[i]],
                        train,
                    )
        return run

    def _runs(self, fold: int) -> bool:
        return self.only_folds is None or fold in self.only_folds

    def _settings(self, items: Sequence[Item], labels: Sequence[Label]) -> dict[str, object]:
        """What decides the stored results; variants and curve sizes may grow on resume."""
        digest = hashlib.sha256()
        for lb in sorted(labels, key=lambda x: x.id):
            digest.update(f"{lb.id}\t{lb.score}\t{lb.rationale}\n".encode())
        for it in sorted(items, key=lambda x: x.id):
            digest.update(it.model_dump_json().encode())
        return {
            # Non-default params only: a later version's new setting, at its default (the old
            # behaviour), does not lock out a run folder made before it existed. The variant
            # is left out: the run's variants may grow on resume.
            "params": self.judge.params.model_dump(
                mode="json", exclude_defaults=True, exclude={"variant"}
            ),
            "rubric": self.rubric.model_dump(mode="json"),
            "folds": self.folds,
            "seed": self.seed,
            "data_sha256": digest.hexdigest(),
        }

    async def _fitted(
        self,
        fold: int,
        train_labels: Sequence[Label],
        train_items: Sequence[Item],
        tag: str = "",
        *,
        units: int = 0,
        repeat: int = 0,
        status: str = "",
    ) -> Judge:
        """The fold's fitted judge: loaded from the run folder when it holds the same fit,
        else fitted (and saved there). ``units`` advance the progress bar either way."""
        path = self.run_dir / "judges" / f"fold-{fold}{tag}.judge.json" if self.run_dir else None
        wanted = {lb.id for lb in train_labels}
        template = self._template()
        if path is not None and path.exists():
            try:
                loaded = load_judge(
                    path,
                    model=template.model,
                    reflection_model=template.reflection_model,
                    embedder=template.embedder,
                )
                # A judge fitted for episodic-only variants has no guidelines: refit it when a
                # resumed run adds a variant that reads them.
                fits = loaded.params.reads_guidelines or not self._distils
                if fits and loaded.memory_ is not None and loaded.memory_.label_ids() == wanted:
                    # What that fit cost when it ran, so a resumed run reports the full cost.
                    spent = _usage_path(path)
                    if spent.exists():
                        self._alignment_usage = self._alignment_usage + Usage.model_validate_json(
                            spent.read_text(encoding="utf-8")
                        )
                    if self._distils and loaded.memory_.failures():
                        # A reflection that failed (a server error, say) is retried, not
                        # frozen into every later run; only its batches cost calls.
                        return await self._refit(
                            fold,
                            status or tag,
                            path,
                            loaded,
                            train_labels,
                            train_items,
                            units,
                            retry=True,
                        )
                    self.progress.advance(units)
                    return loaded
            except JudgeAlignError:
                pass  # a damaged checkpoint is refitted; the response cache makes it cheap
        return await self._refit(
            fold, status or tag, path, self._fold_judge(repeat), train_labels, train_items, units
        )

    async def _refit(
        self,
        fold: int,
        tag: str,
        path: Path | None,
        judge: Judge,
        train_labels: Sequence[Label],
        train_items: Sequence[Item],
        units: int,
        *,
        retry: bool = False,
    ) -> Judge:
        """Fit ``judge`` (new, or with ``retry`` a loaded one whose failed reflection batches
        are distilled again) and save it with what its fits cost."""
        before = judge.usage()
        self.progress.status(f"aligning fold {fold + 1}{tag} ({len(train_labels)} labels)")
        await judge.afit(train_labels, train_items)
        self.progress.status(f"scoring fold {fold + 1}{tag}")
        self.progress.advance(units)
        spent_now = judge.usage() - before
        self._alignment_usage = self._alignment_usage + spent_now
        if path is not None:
            save_judge(judge, path)
            total = _usage_path(path)
            if retry and total.exists():
                spent_now = spent_now + Usage.model_validate_json(total.read_text(encoding="utf-8"))
            write_text_atomic(total, spent_now.model_dump_json())  # a kill leaves no half
        return judge

    async def _predict(
        self,
        judges: dict[str, tuple[Judge, int]],
        items: Sequence[Item],
        pairs_of: dict[str, list[str]],
        store: JudgementStore,
        out: dict[str, dict[tuple[str, str], Judgement]],
        *,
        repeat: int = 0,
    ) -> None:
        """Judge every item with every variant, one item's dimensions and variants in a row.

        Prompts are [item][dimension][memory context], so the calls of one item go dimension
        by dimension, each variant in turn: every call shares the item with the one before
        and the aligned variants also share the dimension's rubric with the baseline's call,
        which a local backend serves from its KV cache. Items still run concurrently up to the
        provider's limit (sequentially when concurrency is 1, which keeps them adjacent).
        """

        async def one_dim(it: Item, dim: str) -> None:
            for variant, (judge, fold) in judges.items():
                j = store.get(variant, fold, it.id, dim, repeat=repeat if fold >= 0 else 0)
                if j is not None:
                    out[variant][(it.id, dim)] = j
                    self.progress.advance()
                    continue

                def record(j: Judgement, variant: str = variant, fold: int = fold) -> None:
                    store.add(variant, fold, j, repeat=repeat if fold >= 0 else 0)
                    out[variant][j.key] = j
                    self.progress.advance()

                await judge.apredict([it], [dim], on_judgement=record)

        async def one_item(it: Item) -> None:
            if self.concurrency <= 1:
                for dim in pairs_of[it.id]:
                    await one_dim(it, dim)
            else:
                await asyncio.gather(*(one_dim(it, dim) for dim in pairs_of[it.id]))

        if self.concurrency <= 1:
            for it in items:
                await one_item(it)
        else:
            gate = asyncio.Semaphore(self.concurrency * 2)

            async def gated(it: Item) -> None:
                async with gate:
                    await one_item(it)

            await asyncio.gather(*(gated(it) for it in items))

    async def _curve(
        self,
        labels: Sequence[Label],
        by_id: dict[str, Item],
        folds: list[tuple[list[str], list[str]]],
        pairs_of: dict[str, list[str]],
        store: JudgementStore,
        data: EvaluationData,
    ) -> None:
        rng = np.random.default_rng(self.seed)
        for n in self.learning_curve:
            per_dim_counts: list[int] = []
            for f, (train_ids, test_ids) in enumerate(folds):
                train = set(train_ids)
                chosen: list[Label] = []
                for dim in self.rubric.dimension_ids:
                    pool = sorted(
                        (lb for lb in labels if lb.item in train and lb.dimension == dim),
                        key=lambda lb: lb.id,
                    )
                    if not pool:
                        continue
                    pick = rng.permutation(len(pool))[: min(n, len(pool))]
                    chosen.extend(pool[i] for i in sorted(pick))
                    per_dim_counts.append(min(n, len(pool)))
                if not self._runs(f):
                    continue  # drawn all the same: later folds' draws must not shift
                items = [by_id[i] for i in sorted({lb.item for lb in chosen})]
                fitted = await self._fitted(f, chosen, items, tag=f"-n{n}", units=len(train_ids))
                variant = f"full@{n}"
                out: dict[str, dict[tuple[str, str], Judgement]] = {variant: {}}
                await self._predict(
                    {variant: (fitted.ablation("full"), f)},
                    [by_id[i] for i in test_ids],
                    pairs_of,
                    store,
                    out,
                )
                check_no_leak(fitted, list(out[variant].values()), train)
                data.curve.setdefault((n, "full"), {}).update(out[variant])
            data.curve_sizes[n] = float(np.mean(per_dim_counts)) if per_dim_counts else 0.0
