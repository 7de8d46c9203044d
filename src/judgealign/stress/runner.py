"""The stress run: every probe on every notebook, the original and each mutant scored by every
judge, the pairs turned into a :class:`StressReport`.

A run folder holds ``settings.json`` (a resume under other judges or notebooks is refused),
``probes.jsonl`` (what each probe changed, or why it did not apply), ``mutants/PROBE/...``
(the changed notebooks, to open and read), ``judgements.jsonl`` (every judgement, appended
and fsynced as it finishes: an interrupted run resumes and never asks twice; a mutant that
came out different is judged again) and, at the end, ``stress.json`` and ``stress.html``.

A mutant is shown to the judge under its notebook's own id, so the prompt differs from the
original's only where the probe changed the notebook. Judges keep rendered texts by item id,
so each (judge, probe) scores with its own clone of the judge (same providers, caches and
memory, a fresh text cache).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from judgealign import __version__
from judgealign.data.item import Item
from judgealign.errors import ConfigError, DataError
from judgealign.evaluation.store import JudgementStore, check_run_settings
from judgealign.judge.judge import Judge, clone
from judgealign.judge.judgement import Judgement
from judgealign.progress import NoProgress, Progress
from judgealign.providers.types import Usage
from judgealign.render import render_item
from judgealign.render.notebook import parse_notebook
from judgealign.stress.catalog import select_probes
from judgealign.stress.model import (
    DIFF_CHARS,
    RATIONALE_CHARS,
    Applicability,
    JudgeInfo,
    MutationRecord,
    PairRecord,
    StressConfig,
    StressReport,
)
from judgealign.stress.probe import Probe, ProbeOutcome
from judgealign.stress.statistics import (
    Settings,
    comparisons,
    dimension_summaries,
    probe_summaries,
    results,
)
from judgealign.sync import run_sync

ORIGINAL = "original"
_LABEL = re.compile(r"^[A-Za-z0-9_.-]+$")


def _safe_path(item_id: str) -> str:
    """A relative path for a mutant file: the item id when it is one, else a hash."""
    parts = Path(item_id).parts
    if item_id and not Path(item_id).is_absolute() and ".." not in parts and parts:
        return item_id if item_id.endswith(".ipynb") else f"{item_id}.ipynb"
    return hashlib.sha256(item_id.encode()).hexdigest()[:16] + ".ipynb"


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def plant(
    items: Sequence[Item],
    probes: Sequence[Probe],
    seed: int = 0,
    run_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[list[ProbeOutcome], dict[tuple[str, str], Item]]:
    """Apply every probe to every notebook: the outcomes, and the mutants by (probe, item).

    With ``run_dir`` the mutants go to ``mutants/PROBE/ITEM`` and the outcomes (what changed,
    or why not) to ``probes.jsonl``. No model is called.
    """
    progress = progress or NoProgress()
    outcomes: list[ProbeOutcome] = []
    mutants: dict[tuple[str, str], Item] = {}
    progress.status(f"planting {len(probes)} probe(s) in {len(items)} notebook(s)")
    for item in items:
        data = parse_notebook(item.output, source=item.path or item.id)
        for probe in probes:
            outcome, text = probe.apply(data, item=item.id, seed=seed)
            path = ""
            if outcome.applied:
                if run_dir is not None:
                    target = run_dir / "mutants" / probe.name / _safe_path(item.id)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text, encoding="utf-8")
                    path = str(target)
                mutants[(probe.name, item.id)] = item.model_copy(
                    update={"output": text, "path": path or item.path}
                )
            outcomes.append(outcome)
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        tmp = run_dir / ".probes.jsonl.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            for o in outcomes:
                fh.write(o.model_dump_json() + "\n")
        tmp.replace(run_dir / "probes.jsonl")
    return outcomes, mutants


class StressTest:
    """Stress-test judges with probes on notebooks (scikit-learn style: the constructor stores
    settings, :meth:`run` does the work).

    ``judges`` is one judge or a mapping label -> judge (compared side by side, the first is
    the reference); ``probes`` are names or kinds (``flaw``, ``invariance``, ``injection``;
    default all); ``dimensions`` default to the rubric's. A flaw probe aimed at a dimension
    that is not scored is left out (it could show nothing). After :meth:`run`,
    ``judgements_`` holds every judgement of the run (stored ones included).
    """

    judgements_: list[Judgement]

    def __init__(
        self,
        judges: Judge | Mapping[str, Judge],
        *,
        probes: str | Sequence[str] | None = None,
        dimensions: Sequence[str] | None = None,
        seed: int = 0,
        run_dir: Path | None = None,
        concurrency: int = 4,
        progress: Progress | None = None,
        retry_failed: bool = False,
        n_resamples: int = 10_000,
        confidence: float = 0.95,
        name: str = "",
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.judges = dict(judges) if isinstance(judges, Mapping) else {"judge": judges}
        self.probes = probes
        self.dimensions = dimensions
        self.seed = seed
        self.run_dir = run_dir
        self.concurrency = concurrency
        self.progress: Progress = progress or NoProgress()
        self.retry_failed = retry_failed
        self.n_resamples = n_resamples
        self.confidence = confidence
        self.name = name
        self.sources = dict(sources or {})

    # -- setup --------------------------------------------------------------------------------
    def _check(self) -> tuple[list[str], list[Probe], list[str]]:
        if not self.judges:
            raise ConfigError("give at least one judge to stress-test")
        for label in self.judges:
            if not _LABEL.match(label):
                raise ConfigError(f"judge label {label!r}: use letters, digits and _.- only")
        rubrics = {j.rubric.id for j in self.judges.values()}
        if len(rubrics) > 1:
            raise ConfigError(
                f"judges on different rubrics ({', '.join(sorted(rubrics))}) cannot be compared"
            )
        rubric = next(iter(self.judges.values())).rubric
        dims = list(self.dimensions) if self.dimensions else list(rubric.dimension_ids)
        for d in dims:
            rubric.dimension(d)
        notes: list[str] = []
        probes = []
        for p in select_probes(self.probes):
            if p.spec.kind == "flaw" and p.spec.dimension not in dims:
                if self.probes is not None and p.name in str(self.probes):
                    notes.append(
                        f"{p.name} left out: it targets {p.spec.dimension}, which is not scored"
                    )
                continue
            probes.append(p)
        if not probes:
            raise ConfigError("no probe left to run; check --probes and --dimension")
        return dims, probes, notes

    def _settings(self, items: Sequence[Item]) -> dict[str, object]:
        digest = hashlib.sha256()
        for it in sorted(items, key=lambda x: x.id):
            digest.update(it.id.encode() + b"\0" + it.output.encode() + b"\0")
        judges: dict[str, object] = {}
        for label, judge in self.judges.items():
            memory = judge.memory_
            judges[label] = {
                "params": judge.params.model_dump(mode="json", exclude_defaults=True),
                "memory_sha256": (
                    hashlib.sha256(memory.to_json().encode()).hexdigest() if memory else None
                ),
            }
        rubric = next(iter(self.judges.values())).rubric
        # Probes and dimensions may grow on resume: judgements are keyed by both.
        return {
            "judges": judges,
            "rubric": rubric.model_dump(mode="json"),
            "seed": self.seed,
            "items_sha256": digest.hexdigest(),
        }

    # -- run ----------------------------------------------------------------------------------
    def run(self, items: Sequence[Item]) -> StressReport:
        """Plant the probes, score originals and mutants, compute the statistics (works
        inside a running event loop too)."""
        return run_sync(self.arun(items))

    async def arun(self, items: Sequence[Item]) -> StressReport:
        started = time.monotonic()
        dims, probes, notes = self._check()
        notebooks = [it for it in items if it.kind == "notebook"]
        if not notebooks:
            raise DataError("stress tests need notebooks (.ipynb items); none were given")
        if len(notebooks) < len(items):
            notes.append(f"{len(items) - len(notebooks)} non-notebook item(s) left out")
        if self.run_dir is not None:
            check_run_settings(self.run_dir, self._settings(notebooks))
        outcomes, mutants = plant(notebooks, probes, self.seed, self.run_dir, self.progress)
        store = JudgementStore(
            self.run_dir / "judgements.jsonl" if self.run_dir else None,
            retry_failed=self.retry_failed,
        )
        labels = list(self.judges)
        clones: dict[tuple[str, str], Judge] = {}

        def judge_for(label: str, probe: str) -> Judge:
            key = (label, probe)
            if key not in clones:
                base = self.judges[label]
                fresh = clone(base, **base.shared_providers(aligned=base.memory_ is not None))
                fresh.memory_ = base.memory_
                clones[key] = fresh
            return clones[key]

        applied_by_item: dict[str, list[str]] = {}
        # Stored judgements are keyed by what was shown: a probe that changes (a new
        # judgealign) makes another mutant, which is judged again, never read from the store.
        shown_sha: dict[tuple[str, str], str] = {}
        for o in outcomes:
            if o.applied:
                applied_by_item.setdefault(o.item, []).append(o.probe)
                shown_sha[(o.probe, o.item)] = o.sha256[:16]
        total = (
            len(labels)
            * len(dims)
            * sum(1 + len(applied_by_item.get(it.id, [])) for it in notebooks)
        )
        self.progress.start("stress testing", total)
        got: dict[tuple[str, str, str, str], Judgement] = {}

        async def score(label: str, probe: str, item: Item, dim: str) -> None:
            key = f"{label}|{probe}|{shown_sha.get((probe, item.id), '')}"
            j = store.get(key, 0, item.id, dim)
            if j is not None:
                got[(label, probe, item.id, dim)] = j
                self.progress.advance()
                return

            def record(j: Judgement) -> None:
                store.add(key, 0, j)
                got[(label, probe, j.item, j.dimension)] = j
                self.progress.advance()

            await judge_for(label, probe).apredict([item], [dim], on_judgement=record)

        async def one_item(item: Item) -> None:
            # The original, then each mutant; within each, dimension by dimension and judge
            # by judge: consecutive prompts share the system prompt, the notebook and the
            # dimension (and a mutant shares the notebook up to its first change), which a
            # local backend serves from its KV cache.
            units = [(ORIGINAL, item)] + [
                (probe, mutants[(probe, item.id)]) for probe in applied_by_item.get(item.id, [])
            ]
            for probe, shown in units:

                async def one_dim(dim: str, probe: str = probe, shown: Item = shown) -> None:
                    for label in labels:
                        await score(label, probe, shown, dim)

                if self.concurrency <= 1:
                    for dim in dims:
                        await one_dim(dim)
                else:
                    await asyncio.gather(*(one_dim(dim) for dim in dims))

        # One notebook at a time for a sequential (local) model: interleaving two would make
        # every prompt start differently from the last and void its KV cache.
        gate = asyncio.Semaphore(1 if self.concurrency <= 1 else self.concurrency * 2)

        async def gated(item: Item) -> None:
            async with gate:
                await one_item(item)

        await asyncio.gather(*(gated(it) for it in notebooks))
        self.judgements_ = list(got.values())
        return self._report(notebooks, dims, probes, outcomes, mutants, got, notes, started)

    # -- report -------------------------------------------------------------------------------
    @staticmethod
    def _visible(
        probe: str, item: Item, mutant: Item, budget: int, cache: dict[tuple[str, str, int], str]
    ) -> bool:
        """Whether the judge's rendering of the mutant differs from the notebook's."""

        def text(it: Item, tag: str) -> str:
            key = (tag, it.id, budget)
            if key not in cache:
                cache[key] = render_item(it, budget_tokens=budget)
            return cache[key]

        return text(item, ORIGINAL) != text(mutant, probe)

    def _report(
        self,
        items: Sequence[Item],
        dims: list[str],
        probes: Sequence[Probe],
        outcomes: Sequence[ProbeOutcome],
        mutants: dict[tuple[str, str], Item],
        got: dict[tuple[str, str, str, str], Judgement],
        notes: list[str],
        started: float,
    ) -> StressReport:
        rubric = next(iter(self.judges.values())).rubric
        specs = {p.name: p.spec for p in probes}
        by_id = {it.id: it for it in items}
        pairs: list[PairRecord] = []
        cache: dict[tuple[str, str, int], str] = {}
        hidden = 0
        for o in outcomes:
            if not o.applied:
                continue
            item, mutant = by_id[o.item], mutants[(o.probe, o.item)]
            for label, judge in self.judges.items():
                visible = self._visible(o.probe, item, mutant, judge.item_budget_tokens, cache)
                hidden += not visible
                for dim in dims:
                    a = got.get((label, ORIGINAL, o.item, dim))
                    b = got.get((label, o.probe, o.item, dim))
                    if a is None or b is None:
                        continue
                    error = next((j.error or "failed" for j in (a, b) if not j.ok), None)
                    pairs.append(
                        PairRecord(
                            judge=label,
                            probe=o.probe,
                            item=o.item,
                            group=item.group_id,
                            dimension=dim,
                            original=a.score,
                            mutant=b.score,
                            visible=visible,
                            error=error,
                            original_rationale=_cut(a.rationale, RATIONALE_CHARS),
                            mutant_rationale=_cut(b.rationale, RATIONALE_CHARS),
                        )
                    )
        if hidden:
            notes.append(
                f"{hidden} mutant(s) render the same as their notebook within a judge's item "
                "budget (the change falls in the part the judge never sees): no judge can react "
                "to them; raise the item budget to include them"
            )
        s = Settings(self.n_resamples, self.confidence, self.seed)
        labels = list(self.judges)
        applicability = []
        for p in probes:
            mine = [o for o in outcomes if o.probe == p.name]
            reasons = Counter(o.reason for o in mine if not o.applied)
            applicability.append(
                Applicability(
                    probe=p.name,
                    kind=p.spec.kind,
                    applied=sum(o.applied for o in mine),
                    not_applicable=sum(not o.applied for o in mine),
                    reasons=dict(reasons.most_common(5)),
                )
            )
        usage = sum((j.usage for j in got.values()), Usage())
        mutations = [
            MutationRecord(
                probe=o.probe,
                item=o.item,
                notes=list(o.notes),
                diff=_cut("".join(c.diff for c in o.changes), DIFF_CHARS),
                mutant_path=mutants[(o.probe, o.item)].path or "",
            )
            for o in outcomes
            if o.applied
        ]
        report = StressReport(
            judgealign_version=__version__,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            config=StressConfig(
                name=self.name,
                rubric_id=rubric.id,
                dimensions=dims,
                judges=[self._info(label) for label in labels],
                probes=[p.spec for p in probes],
                seed=self.seed,
                n_items=len(items),
                n_resamples=self.n_resamples,
                confidence=self.confidence,
            ),
            rubric=rubric,
            applicability=applicability,
            results=results(pairs, specs, rubric, s),
            probes=probe_summaries(pairs, specs, rubric, s),
            dimensions=dimension_summaries(pairs, specs, rubric, labels, dims, s),
            comparisons=comparisons(pairs, specs, rubric, labels, dims, s),
            mutations=mutations,
            pairs=pairs,
            usage=usage,
            wall_seconds=time.monotonic() - started,
            notes=notes,
        )
        if self.run_dir is not None:
            from judgealign.stress.html import write_html

            report.save(self.run_dir / "stress.json")
            write_html(report, self.run_dir / "stress.html")
        return report

    def _info(self, label: str) -> JudgeInfo:
        judge = self.judges[label]
        params = judge.params
        # A baseline ablation shares its judge's memory but never reads it.
        memory = judge.memory_ if params.reads_memory else None
        return JudgeInfo(
            label=label,
            model=params.model or "",
            variant=params.variant,
            fitted=memory is not None,
            labels=len(memory.label_ids()) if memory is not None else 0,
            source=self.sources.get(label, ""),
            item_budget_tokens=params.item_budget_tokens,
        )


def stress_test(
    judges: Judge | Mapping[str, Judge], items: Sequence[Item], **kwargs: Any
) -> StressReport:
    """Stress-test one judge or several side by side on notebooks; see :class:`StressTest`.

    >>> import judgealign as ja
    >>> judge = ja.Judge(ja.load_rubric("ml-notebook"), model="fake:lenient")
    >>> items = ja.load_items(["src/judgealign/demo/data/notebooks/customer_churn_01.ipynb"])
    >>> report = ja.stress_test(judge, items, probes="no_mlflow", dimensions=["mlflow_logging"],
    ...                         n_resamples=200)
    >>> report.dimension("judge", "mlflow_logging").detection.estimate  # a lenient judge
    0.0
    """
    return StressTest(judges, **kwargs).run(items)
