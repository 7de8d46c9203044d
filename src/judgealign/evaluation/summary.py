"""Turn the runner's out-of-fold judgements into an EvaluationReport with statistics.

Every interval and paired test resamples what is independent: whole input groups when items
share one (the cluster bootstrap, the default whenever they do), items otherwise; the report
names which. With repeated cross-validation each variant's MAE interval is over the items'
errors averaged across repeats (item sampling), the spread of the per-repeat MAEs is shown
beside it (alignment variance), and the paired test resamples repeats and groups together, so
its p-value carries both (evaluation/bootstrap.py says how, and what it assumes).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from judgealign import __version__
from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import ConfigError
from judgealign.evaluation.bootstrap import bootstrap_ci, holm_correction, paired_bootstrap
from judgealign.evaluation.calibration import fit_calibration
from judgealign.evaluation.metrics import (
    DimensionMetrics,
    PairedScores,
    compute_metrics,
    pair_scores,
)
from judgealign.evaluation.planning import plan_sample_size
from judgealign.evaluation.reliability import human_alpha, human_human_errors
from judgealign.evaluation.runner import EvaluationData, Folds, RepeatData
from judgealign.judge.failures import FailureSummary
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import JudgeParams
from judgealign.memory.records import Episode
from judgealign.report.model import (
    EXAMPLE_RATIONALE_CHARS,
    Comparison,
    CurvePoint,
    DimensionResult,
    FoldMemory,
    Interval,
    JudgementRecord,
    LearnedGuideline,
    ReferenceLine,
    RunConfig,
    ShownExample,
)
from judgealign.report.views import Report
from judgealign.rubric.model import Dimension, Rubric


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def _errors(paired: PairedScores, signed: bool = False) -> np.ndarray:
    """Per-item (signed) error, NaN where not both applicable and ok; aligned to item_ids."""
    e, j = paired.expert_array, paired.judge_array
    diff = j - e
    return diff if signed else np.abs(diff)


# What the report's intervals and paired tests resample: "auto" is "cluster" whenever two
# labelled items share an input group, else "item".
BootstrapUnit = Literal["auto", "item", "cluster"]
BOOTSTRAP_UNITS = ("auto", "item", "cluster")


def resolve_bootstrap(
    requested: str, groups: Iterable[str], draw_size: int | None = None
) -> Literal["item", "cluster"]:
    """The resampling unit a report uses for ``requested`` over items in ``groups``.

    >>> resolve_bootstrap("auto", ["a", "a", "b"]), resolve_bootstrap("auto", ["a", "b"])
    ('cluster', 'item')
    """
    if requested not in BOOTSTRAP_UNITS:
        raise ConfigError(f"bootstrap {requested!r}: choose {', '.join(BOOTSTRAP_UNITS)}")
    if draw_size is not None:
        if requested == "cluster":
            raise ConfigError(
                "the reference study's draw size resamples items; it cannot be combined with "
                "the cluster bootstrap (drop the draw size or use --bootstrap item)"
            )
        return "item"
    if requested == "auto":
        seen: set[str] = set()
        for g in groups:
            if g in seen:
                return "cluster"
            seen.add(g)
        return "item"
    return "cluster" if requested == "cluster" else "item"


def _interval(
    values: np.ndarray,
    groups: Sequence[str] | None,
    *,
    n_resamples: int,
    method: str,
    seed: int,
    draw_size: int | None,
) -> Interval | None:
    """The bootstrap interval of the mean of ``values`` (NaN dropped), resampling whole
    ``groups`` when given."""
    keep = ~np.isnan(values)
    x = values[keep]
    if x.size == 0:
        return None
    use = "percentile" if draw_size is not None or x.size < 3 else method
    kept_groups = None if groups is None else [g for g, k in zip(groups, keep, strict=True) if k]
    ci = bootstrap_ci(
        x,
        n_resamples=n_resamples,
        method=use,  # type: ignore[arg-type]
        seed=seed,
        draw_size=draw_size,
        groups=kept_groups,
    )
    low = ci.low if not math.isnan(ci.low) else ci.estimate
    high = ci.high if not math.isnan(ci.high) else ci.estimate
    return Interval(
        estimate=ci.estimate,
        low=low,
        high=high,
        method=use,
        confidence=ci.confidence,
        unit=ci.unit,
        n_groups=ci.n_groups,
        expanded=ci.expanded,
    )


def _paired(
    dim: Dimension,
    expert: dict[tuple[str, str], float],
    judgements: dict[tuple[str, str], Judgement],
) -> PairedScores:
    ex = {i: s for (i, d), s in expert.items() if d == dim.id}
    jd = {i: (j.score if j.ok else None) for (i, d), j in judgements.items() if d == dim.id}
    return pair_scores(ex, jd, na_value=dim.scale.na_value)


def _rater_map(rater_labels: Sequence[Label], dim: str) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = defaultdict(dict)
    for lb in rater_labels:
        if lb.dimension == dim:
            out[lb.item][lb.rater] = lb.score
    return out


def _item_means(cells: np.ndarray) -> np.ndarray:
    """Per item (column), the mean over the repeats (rows) that scored it; NaN if none did."""
    kept = ~np.isnan(cells)
    counts = kept.sum(axis=0)
    sums = np.where(kept, cells, 0.0).sum(axis=0)
    out: np.ndarray = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


def _mean_of(values: Iterable[float]) -> float | None:
    kept = [v for v in values if not math.isnan(v)]
    return float(np.mean(kept)) if kept else None


def _median_predictor(
    dim: Dimension, expert: dict[tuple[str, str], float], folds: Folds
) -> float | None:
    """MAE of predicting each test fold with its training folds' median expert score."""
    errs: list[float] = []
    for train, test in folds:

        def applicable(ids: Sequence[str]) -> list[float]:
            out = []
            for i in ids:
                s = expert.get((i, dim.id))
                if s is not None and not dim.scale.is_na(s):
                    out.append(s)
            return out

        tr = applicable(train)
        if not tr:
            continue
        med = float(np.median(tr))
        errs.extend(abs(s - med) for s in applicable(test))
    return float(np.mean(errs)) if errs else None


def _applicable(
    data: EvaluationData, variant: str, dim: Dimension
) -> Iterator[tuple[float, Judgement]]:
    """(expert score, judgement) of ``variant`` on ``dim`` where the experts found it applicable."""
    for key, j in data.judgements.get(variant, {}).items():
        expert = data.expert.get(key)
        if key[1] == dim.id and expert is not None and not dim.scale.is_na(expert):
            yield expert, j


def _memory_lines(rubric: Rubric, repeats: Sequence[RepeatData]) -> list[FoldMemory]:
    """Per repeat, fold and dimension: the guidelines its judge distilled (most support
    first) and how many examples it could retrieve."""
    out = []
    for r, run in enumerate(repeats):
        for fold, memory in sorted(run.memories.items()):
            for dim in rubric.dimension_ids:
                if dim not in memory.dimensions:
                    continue
                guidelines = sorted(memory.guidelines(dim), key=lambda g: -g.support)
                out.append(
                    FoldMemory(
                        fold=fold,
                        repeat=r,
                        dimension=dim,
                        n_episodes=len(memory.episodes(dim)),
                        guidelines=[
                            LearnedGuideline(
                                id=g.id, text=g.text, support=g.support, sources=g.sources
                            )
                            for g in guidelines
                        ],
                    )
                )
    return out


def _shown_examples(
    repeats: Sequence[RepeatData], records: Sequence[JudgementRecord]
) -> list[ShownExample]:
    """Every labelled example some judgement was shown, once, resolved through its fold's
    memory (the rendered item is left out: report.json stays small)."""
    episodes: dict[tuple[int, int, str], dict[str, Episode]] = {}
    shown: dict[str, ShownExample] = {}
    for rec in records:
        j = rec.judgement
        if not j.episodes or rec.repeat >= len(repeats):
            continue
        memory = repeats[rec.repeat].memories.get(rec.fold)
        if memory is None:
            continue
        key = (rec.repeat, rec.fold, j.dimension)
        by_id = episodes.get(key)
        if by_id is None:
            by_id = episodes[key] = {e.id: e for e in memory.episodes(j.dimension)}
        for eid in j.episodes:
            e = by_id.get(eid)
            if e is None or eid in shown:
                continue
            rationale = e.rationale.strip()
            if len(rationale) > EXAMPLE_RATIONALE_CHARS:
                rationale = rationale[:EXAMPLE_RATIONALE_CHARS] + "…"
            shown[eid] = ShownExample(
                id=e.id,
                item=e.item,
                dimension=e.dimension,
                rater=e.rater,
                score=e.score,
                rationale=rationale,
            )
    return [shown[k] for k in sorted(shown)]


def _calibrated_baseline(
    dim: Dimension, data: EvaluationData, group_of: dict[str, str], seed: int, folds: Folds
) -> dict[str, float]:
    """Item -> error of the baseline's score through an affine map fitted on each fold's
    training items (free: the baseline judged every item once, with no memory to leak)."""
    base = {
        j.item: (e, j.score)
        for e, j in _applicable(data, "baseline", dim)
        if j.score is not None and not dim.scale.is_na(j.score)
    }
    out: dict[str, float] = {}
    for train, test in folds:
        points = [(i, base[i][1], base[i][0]) for i in train if i in base]
        cal = fit_calibration(points, {i: group_of.get(i, i) for i in train}, dim.scale, seed=seed)
        out.update({i: abs(cal.apply(base[i][1]) - base[i][0]) for i in test if i in base})
    return out


class _Stats:
    """The report's resampling settings, with the unit resolved for these items."""

    def __init__(
        self,
        unit: str,
        group_of: dict[str, str],
        *,
        n_resamples: int,
        method: str,
        seed: int,
        draw_size: int | None,
    ) -> None:
        self.unit = unit
        self.group_of = group_of
        self.n_resamples = n_resamples
        self.method = method
        self.seed = seed
        self.draw_size = draw_size

    def groups(self, ids: Sequence[str]) -> list[str] | None:
        if self.unit != "cluster":
            return None
        return [self.group_of.get(i, i) for i in ids]

    def interval(
        self, values: np.ndarray, ids: Sequence[str], *, quick: bool = False
    ) -> Interval | None:
        return _interval(
            values,
            self.groups(ids),
            n_resamples=min(self.n_resamples, 2000) if quick else self.n_resamples,
            method="percentile" if quick else self.method,
            seed=self.seed,
            draw_size=None if quick else self.draw_size,
        )


def _result(
    variant: str,
    dim: Dimension,
    paireds: Sequence[PairedScores],
    stats: _Stats,
) -> tuple[DimensionResult, np.ndarray]:
    """One variant on one dimension over its repeats (one ``PairedScores`` each), and its
    absolute errors as repeats x items."""
    ids = paireds[0].item_ids
    signed = np.vstack([_errors(p, signed=True) for p in paireds])
    absolute = np.abs(signed)
    ms: list[DimensionMetrics] = [
        compute_metrics(p, dim.scale.min, dim.scale.max, dim.scale.na_value) for p in paireds
    ]
    first = ms[0]
    confusion = np.sum([np.array(m.confusion.counts) for m in ms], axis=0)
    na = dim.scale.na_value
    item_abs = _item_means(absolute)
    result = DimensionResult(
        variant=variant,
        dimension=dim.id,
        n_items=first.n_items,
        n_scored=int(np.count_nonzero(~np.isnan(item_abs))),
        mae=stats.interval(item_abs, ids),
        bias=stats.interval(_item_means(signed), ids),
        exact_agreement=_mean_of(m.exact_agreement for m in ms),
        within_one=_mean_of(m.within_one_agreement for m in ms),
        qwk=_mean_of(m.quadratic_weighted_kappa for m in ms),
        spearman=_mean_of(m.spearman for m in ms),
        krippendorff_alpha=_mean_of(m.krippendorff_alpha_interval for m in ms),
        na_agreement=_mean_of(m.na.na_agreement for m in ms),
        na_expert_only=sum(m.na.expert_na_only for m in ms),
        na_judge_only=sum(m.na.judge_na_only for m in ms),
        failed=sum(m.n_failed for m in ms),
        levels=[
            "N/A" if (na is not None and lv == na) else str(lv) for lv in first.confusion.levels
        ],
        confusion=[[int(c) for c in row] for row in confusion],
        mae_repeats=[m.mae for m in ms] if len(ms) > 1 else [],
    )
    return result, absolute


def _comparisons(
    rubric: Rubric,
    variants: Sequence[str],
    abs_err: dict[tuple[str, str], tuple[tuple[str, ...], np.ndarray]],
    stats: _Stats,
) -> list[Comparison]:
    """Each aligned variant against the baseline on the same items, Holm across dimensions."""
    comparisons: list[Comparison] = []
    for variant in variants:
        if variant == "baseline":
            continue
        raw: dict[str, Comparison] = {}
        for dim in rubric.dimensions:
            if (variant, dim.id) not in abs_err or ("baseline", dim.id) not in abs_err:
                continue
            ids, err_b = abs_err[("baseline", dim.id)]
            ids_v, err_v = abs_err[(variant, dim.id)]
            index = {i: n for n, i in enumerate(ids_v)}
            cols = [index.get(i, -1) for i in ids]
            aligned_v = np.where(np.array(cols) >= 0, err_v[:, cols], np.nan)
            # One repeat stays a 1-d test (the 2-d path resamples repeats too).
            pc = paired_bootstrap(
                err_b[0],
                aligned_v if aligned_v.shape[0] > 1 else aligned_v[0],
                n_resamples=stats.n_resamples,
                seed=stats.seed,
                groups=stats.groups(ids),
            )
            if pc.n == 0:
                continue
            # Both MAEs over the same paired items (the expert and both judges scored them),
            # so a table row compares like with like; repeats average per item first.
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                per_item_v = np.nanmean(aligned_v, axis=0)
            both = ~np.isnan(err_b[0]) & ~np.isnan(per_item_v)
            both_ids = [i for i, keep in zip(ids, both, strict=True) if keep]
            per_repeat = []
            if aligned_v.shape[0] > 1:
                diff = aligned_v - err_b[0]
                per_repeat = [float(np.nanmean(row)) for row in diff if not np.isnan(row).all()]
            raw[dim.id] = Comparison(
                dimension=dim.id,
                reference="baseline",
                variant=variant,
                n=pc.n,
                mae_reference=pc.mean_a,
                mae_variant=pc.mean_b,
                delta=Interval(
                    estimate=pc.delta,
                    low=pc.low,
                    high=pc.high,
                    method="percentile",
                    confidence=pc.confidence,
                    unit=pc.unit,
                    n_groups=pc.n_groups,
                    expanded=pc.expanded,
                ),
                p_value=pc.p_value,
                p_holm=pc.p_value,
                relative_change=(pc.delta / pc.mean_a) if pc.mean_a > 0 else None,
                n_repeats=pc.n_repeats,
                delta_repeats=per_repeat,
                reference_mae=stats.interval(err_b[0][both], both_ids),
                variant_mae=stats.interval(per_item_v[both], both_ids),
            )
        adjusted = holm_correction({d: c.p_value for d, c in raw.items()})
        comparisons.extend(c.model_copy(update={"p_holm": adjusted[d]}) for d, c in raw.items())
    return comparisons


def _references(
    rubric: Rubric,
    data: EvaluationData,
    variants: Sequence[str],
    raters: Sequence[Label],
    stats: _Stats,
) -> list[ReferenceLine]:
    """Per dimension: the median predictor and the calibrated baseline (both averaged over
    repeats), and the human-human level where items have several raters."""
    repeats = data.all_repeats()
    references = []
    for dim in rubric.dimensions:
        calibrated = []
        if "baseline" in variants:
            for run in repeats:
                alone = _calibrated_baseline(dim, data, stats.group_of, stats.seed, run.folds)
                if alone:
                    calibrated.append(float(np.mean(list(alone.values()))))
        medians = [_median_predictor(dim, data.expert, run.folds) for run in repeats]
        rmap = _rater_map(raters, dim.id)
        multi = sum(1 for v in rmap.values() if len(v) >= 2)
        per_item = human_human_errors(rmap, na_value=dim.scale.na_value) if multi else {}
        hh = None
        if per_item:
            ids = list(per_item)
            hh = stats.interval(np.array([per_item[i] for i in ids]), ids)
        alpha = human_alpha(rmap, na_value=dim.scale.na_value) if multi else math.nan
        # What labelling an item costs: each rater's label (a ratings file's labels are means).
        dim_labels = [lb for lb in raters if lb.dimension == dim.id]
        labelled_items = len({lb.item for lb in dim_labels})
        references.append(
            ReferenceLine(
                dimension=dim.id,
                median_predictor_mae=_mean_of(m for m in medians if m is not None),
                calibrated_baseline_mae=_mean_of(calibrated),
                human_human_mae=hh.estimate if hh is not None else None,
                n_multi_rated=multi,
                human_human=hh,
                human_alpha=_num(alpha),
                n_raters=len({r for by in rmap.values() if len(by) >= 2 for r in by}),
                labels_per_item=len(dim_labels) / max(1, labelled_items),
            )
        )
    return references


def _records(data: EvaluationData, variants: Sequence[str]) -> list[JudgementRecord]:
    """Every out-of-fold judgement: the baseline's once, the aligned variants' per repeat."""
    out: list[JudgementRecord] = []
    for r, run in enumerate(data.all_repeats()):
        for v in variants:
            if r > 0 and v == "baseline":
                continue
            out.extend(
                JudgementRecord(
                    variant=v,
                    fold=run.fold_of.get(j.item, -1),
                    expert=data.expert.get(j.key),
                    judgement=j,
                    repeat=r,
                )
                for j in run.judgements.get(v, {}).values()
            )
    return out


def build_report(
    rubric: Rubric,
    params: JudgeParams,
    data: EvaluationData,
    *,
    items: Sequence[Item],
    labels: Sequence[Label],
    rater_labels: Sequence[Label] = (),
    variants: Sequence[str],
    folds: int,
    seed: int,
    n_resamples: int = 10_000,
    ci_method: str = "bca",
    draw_size: int | None = None,
    bootstrap: BootstrapUnit = "auto",
    wall_seconds: float = 0.0,
    name: str = "",
    plan: bool = True,
) -> Report:
    """Metrics with bootstrap CIs per variant and dimension, paired tests vs the baseline.

    ``bootstrap``: what intervals and tests resample ("auto": whole input groups whenever
    two labelled items share one, else items). ``rater_labels``: each rater's labels, for the
    human-human reference; without them, ``labels`` serve when some item has several raters.
    ``plan``: add the labels needed for default targets (``planning.plan_sample_size``).
    """
    group_of = {it.id: it.group_id for it in items}
    labelled = list(dict.fromkeys(k[0] for k in data.expert))
    unit = resolve_bootstrap(bootstrap, (group_of.get(i, i) for i in labelled), draw_size)
    stats = _Stats(
        unit,
        group_of,
        n_resamples=n_resamples,
        method=ci_method,
        seed=seed,
        draw_size=draw_size,
    )
    repeats = data.all_repeats()
    results: list[DimensionResult] = []
    abs_err: dict[tuple[str, str], tuple[tuple[str, ...], np.ndarray]] = {}
    for variant in variants:
        runs = repeats[:1] if variant == "baseline" else repeats
        for dim in rubric.dimensions:
            paireds = [_paired(dim, data.expert, run.judgements.get(variant, {})) for run in runs]
            if not paireds[0].item_ids:
                continue
            result, absolute = _result(variant, dim, paireds, stats)
            results.append(result)
            abs_err[(variant, dim.id)] = (paireds[0].item_ids, absolute)
    comparisons = _comparisons(rubric, variants, abs_err, stats)
    references = _references(rubric, data, variants, rater_labels or labels, stats)
    curve: list[CurvePoint] = []
    for (n, variant), js in sorted(data.curve.items()):
        for dim in rubric.dimensions:
            paired = _paired(dim, data.expert, js)
            if paired.item_ids:
                curve.append(
                    CurvePoint(
                        dimension=dim.id,
                        variant=variant,
                        n_labels=n,
                        mae=stats.interval(_errors(paired), paired.item_ids, quick=True),
                    )
                )
    records = _records(data, variants)
    config = RunConfig(
        name=name,
        rubric_id=rubric.id,
        model=params.model,
        reflection_model=params.reflection_model,
        embedder=params.embedder,
        folds=folds,
        seed=seed,
        variants=list(variants),
        dimensions=list(rubric.dimension_ids),
        n_items=len(labelled),
        n_groups=len({group_of.get(i, i) for i in labelled}),
        n_labels=len(labels),
        n_resamples=n_resamples,
        ci_method=ci_method,
        draw_size=draw_size,
        bootstrap=unit,
        repeats=len(repeats),
        params=params.model_dump(mode="json"),
    )
    notes = reflection_notes(data)
    failures = FailureSummary.of(rec.judgement for rec in records)
    if failures.failed:
        notes.insert(0, f"WARNING: {failures.line()}")
    if draw_size is not None:
        notes.append(
            f"CIs drew {draw_size} items per resample (the reference study's scheme): "
            "intervals are anti-conservative (too narrow); use the default n-from-n."
        )
    report = Report(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        judgealign_version=__version__,
        config=config,
        rubric=rubric,
        results=results,
        comparisons=comparisons,
        references=references,
        learning_curve=curve,
        memory=_memory_lines(rubric, repeats),
        examples=_shown_examples(repeats, records),
        judgements=records,
        usage_alignment=data.usage_alignment,
        usage_scoring=data.usage_scoring,
        wall_seconds=wall_seconds,
        leakage_checked=data.leakage_checked,
        notes=notes,
        item_groups={i: g for i in labelled if (g := group_of.get(i, i)) != i},
    )
    if not plan:
        return report
    return report.model_copy(update={"plan": plan_sample_size(report)})


def reflection_notes(data: EvaluationData) -> list[str]:
    """One line per fold and dimension whose reflection failed on some labels: the semantic
    and full judges of that fold ran with fewer (or no) guidelines than the labels allow.

    >>> from judgealign.memory.store import ReflectionGap
    >>> data = EvaluationData(folds=[], fold_of={}, expert={}, judgements={})
    >>> data.reflection_gaps[1] = {"coherence": ReflectionGap(40, 40, 0, "m: no answer")}
    >>> reflection_notes(data)[0]
    'fold 2, coherence: reflection failed on 40 of 40 labels (m: no answer); 0 guidelines kept'
    """
    notes = []
    repeats = data.all_repeats()
    for r, run in enumerate(repeats):
        where = f"repeat {r + 1}, " if len(repeats) > 1 else ""
        for fold, gaps in sorted(run.reflection_gaps.items()):
            for dim, gap in gaps.items():
                notes.append(
                    f"{where}fold {fold + 1}, {dim}: reflection failed on {gap.failed_labels} "
                    f"of {gap.labels} labels ({gap.error}); {gap.guidelines} guidelines kept"
                )
    return notes
