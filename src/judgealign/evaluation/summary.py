"""Turn the runner's out-of-fold judgements into an EvaluationReport with statistics."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import numpy as np

from judgealign import __version__
from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.evaluation.bootstrap import bootstrap_ci, holm_correction, paired_bootstrap
from judgealign.evaluation.calibration import fit_calibration
from judgealign.evaluation.metrics import PairedScores, compute_metrics, pair_scores
from judgealign.evaluation.runner import EvaluationData
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


def _interval(
    values: np.ndarray, *, n_resamples: int, method: str, seed: int, draw_size: int | None
) -> Interval | None:
    x = values[~np.isnan(values)]
    if x.size == 0:
        return None
    use = "percentile" if draw_size is not None or x.size < 3 else method
    ci = bootstrap_ci(
        x,
        n_resamples=n_resamples,
        method=use,  # type: ignore[arg-type]
        seed=seed,
        draw_size=draw_size,
    )
    low = ci.low if not math.isnan(ci.low) else ci.estimate
    high = ci.high if not math.isnan(ci.high) else ci.estimate
    return Interval(estimate=ci.estimate, low=low, high=high, method=use, confidence=ci.confidence)


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


def _median_predictor(dim: Dimension, data: EvaluationData) -> float | None:
    """MAE of predicting each test fold with its training folds' median expert score."""
    errs: list[float] = []
    for train, test in data.folds:

        def applicable(ids: Sequence[str]) -> list[tuple[str, float]]:
            out = []
            for i in ids:
                s = data.expert.get((i, dim.id))
                if s is not None and not dim.scale.is_na(s):
                    out.append((i, s))
            return out

        tr = [s for _, s in applicable(train)]
        if not tr:
            continue
        med = float(np.median(tr))
        errs.extend(abs(s - med) for _, s in applicable(test))
    return float(np.mean(errs)) if errs else None


def _applicable(
    data: EvaluationData, variant: str, dim: Dimension
) -> Iterator[tuple[float, Judgement]]:
    """(expert score, judgement) of ``variant`` on ``dim`` where the experts found it applicable."""
    for key, j in data.judgements.get(variant, {}).items():
        expert = data.expert.get(key)
        if key[1] == dim.id and expert is not None and not dim.scale.is_na(expert):
            yield expert, j


def _memory_lines(rubric: Rubric, data: EvaluationData) -> list[FoldMemory]:
    """Per fold and dimension: the guidelines its judge distilled (most support first) and
    how many examples it could retrieve."""
    out = []
    for fold, memory in sorted(data.memories.items()):
        for dim in rubric.dimension_ids:
            if dim not in memory.dimensions:
                continue
            guidelines = sorted(memory.guidelines(dim), key=lambda g: -g.support)
            out.append(
                FoldMemory(
                    fold=fold,
                    dimension=dim,
                    n_episodes=len(memory.episodes(dim)),
                    guidelines=[
                        LearnedGuideline(id=g.id, text=g.text, support=g.support, sources=g.sources)
                        for g in guidelines
                    ],
                )
            )
    return out


def _shown_examples(data: EvaluationData, records: Sequence[JudgementRecord]) -> list[ShownExample]:
    """Every labelled example some judgement was shown, once, resolved through its fold's
    memory (the rendered item is left out: report.json stays small)."""
    episodes: dict[tuple[int, str], dict[str, Episode]] = {}
    shown: dict[str, ShownExample] = {}
    for rec in records:
        j = rec.judgement
        memory = data.memories.get(rec.fold)
        if memory is None or not j.episodes:
            continue
        by_id = episodes.get((rec.fold, j.dimension))
        if by_id is None:
            by_id = episodes[(rec.fold, j.dimension)] = {
                e.id: e for e in memory.episodes(j.dimension)
            }
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
    dim: Dimension, data: EvaluationData, group_of: dict[str, str], seed: int
) -> dict[str, float]:
    """Item -> error of the baseline's score through an affine map fitted on each fold's
    training items (free: the baseline judged every item once, with no memory to leak)."""
    base = {
        j.item: (e, j.score)
        for e, j in _applicable(data, "baseline", dim)
        if j.score is not None and not dim.scale.is_na(j.score)
    }
    out: dict[str, float] = {}
    for train, test in data.folds:
        points = [(i, base[i][1], base[i][0]) for i in train if i in base]
        cal = fit_calibration(points, {i: group_of.get(i, i) for i in train}, dim.scale, seed=seed)
        out.update({i: abs(cal.apply(base[i][1]) - base[i][0]) for i in test if i in base})
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
    wall_seconds: float = 0.0,
    name: str = "",
) -> Report:
    """Metrics with bootstrap CIs per variant and dimension, paired tests vs the baseline."""
    results: list[DimensionResult] = []
    abs_err: dict[tuple[str, str], tuple[tuple[str, ...], np.ndarray]] = {}
    boot = {"n_resamples": n_resamples, "method": ci_method, "seed": seed, "draw_size": draw_size}
    for variant in variants:
        js = data.judgements.get(variant, {})
        for dim in rubric.dimensions:
            paired = _paired(dim, data.expert, js)
            if not paired.item_ids:
                continue
            m = compute_metrics(
                paired,
                dim.scale.min,
                dim.scale.max,
                dim.scale.na_value,
                ratings=_rater_map(rater_labels, dim.id) or None,
            )
            errs = _errors(paired)
            abs_err[(variant, dim.id)] = (paired.item_ids, errs)
            cm = m.confusion
            na = dim.scale.na_value
            results.append(
                DimensionResult(
                    variant=variant,
                    dimension=dim.id,
                    n_items=m.n_items,
                    n_scored=m.n_scored,
                    mae=_interval(errs, **boot),  # type: ignore[arg-type]
                    bias=_interval(_errors(paired, signed=True), **boot),  # type: ignore[arg-type]
                    exact_agreement=_num(m.exact_agreement),
                    within_one=_num(m.within_one_agreement),
                    qwk=_num(m.quadratic_weighted_kappa),
                    spearman=_num(m.spearman),
                    krippendorff_alpha=_num(m.krippendorff_alpha_interval),
                    na_agreement=_num(m.na.na_agreement),
                    na_expert_only=m.na.expert_na_only,
                    na_judge_only=m.na.judge_na_only,
                    failed=m.n_failed,
                    levels=[
                        "N/A" if (na is not None and lv == na) else str(lv) for lv in cm.levels
                    ],
                    confusion=[list(row) for row in cm.counts],
                )
            )
    comparisons: list[Comparison] = []
    for variant in variants:
        if variant == "baseline":
            continue
        raw: dict[str, Comparison] = {}
        for dim in rubric.dimensions:
            if (variant, dim.id) not in abs_err or ("baseline", dim.id) not in abs_err:
                continue
            ids_b, err_b = abs_err[("baseline", dim.id)]
            ids_v, err_v = abs_err[(variant, dim.id)]
            index = {i: n for n, i in enumerate(ids_v)}
            aligned_v = np.array([err_v[index[i]] if i in index else np.nan for i in ids_b])
            pc = paired_bootstrap(err_b, aligned_v, n_resamples=n_resamples, seed=seed)
            if pc.n == 0:
                continue
            both = ~np.isnan(err_b) & ~np.isnan(aligned_v)
            raw[dim.id] = Comparison(
                dimension=dim.id,
                reference="baseline",
                variant=variant,
                n=pc.n,
                mae_reference=pc.mean_a,
                mae_variant=pc.mean_b,
                delta=Interval(estimate=pc.delta, low=pc.low, high=pc.high, method="percentile"),
                p_value=pc.p_value,
                p_holm=pc.p_value,
                relative_change=(pc.delta / pc.mean_a) if pc.mean_a > 0 else None,
                reference_mae=_interval(err_b[both], **boot),  # type: ignore[arg-type]
                variant_mae=_interval(aligned_v[both], **boot),  # type: ignore[arg-type]
            )
        adjusted = holm_correction({d: c.p_value for d, c in raw.items()})
        comparisons.extend(c.model_copy(update={"p_holm": adjusted[d]}) for d, c in raw.items())
    references = []
    group_of = {it.id: it.group_id for it in items}
    for dim in rubric.dimensions:
        alone = _calibrated_baseline(dim, data, group_of, seed) if "baseline" in variants else {}
        rmap = _rater_map(rater_labels, dim.id)
        multi = sum(1 for v in rmap.values() if len(v) >= 2)
        hh = None
        if multi:
            from judgealign.evaluation.reliability import human_human_mae

            hh = _num(human_human_mae(rmap, na_value=dim.scale.na_value))
        references.append(
            ReferenceLine(
                dimension=dim.id,
                median_predictor_mae=_median_predictor(dim, data),
                calibrated_baseline_mae=_num(float(np.mean(list(alone.values()))))
                if alone
                else None,
                human_human_mae=hh,
                n_multi_rated=multi,
            )
        )
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
                        mae=_interval(
                            _errors(paired),
                            n_resamples=min(n_resamples, 2000),
                            method="percentile",
                            seed=seed,
                            draw_size=None,
                        ),
                    )
                )
    records = [
        JudgementRecord(
            variant=v, fold=data.fold_of.get(j.item, -1), expert=data.expert.get(j.key), judgement=j
        )
        for v in variants
        for j in data.judgements.get(v, {}).values()
    ]
    groups = {it.group_id for it in items if any(k[0] == it.id for k in data.expert)}
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
        n_items=len({k[0] for k in data.expert}),
        n_groups=len(groups),
        n_labels=len(labels),
        n_resamples=n_resamples,
        ci_method=ci_method,
        draw_size=draw_size,
        params=params.model_dump(mode="json"),
    )
    notes = reflection_notes(data)
    failures = FailureSummary.of(j for by in data.judgements.values() for j in by.values())
    if failures.failed:
        notes.insert(0, f"WARNING: {failures.line()}")
    if draw_size is not None:
        notes.append(
            f"CIs drew {draw_size} items per resample (the reference study's scheme): "
            "intervals are anti-conservative (too narrow); use the default n-from-n."
        )
    return Report(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        judgealign_version=__version__,
        config=config,
        rubric=rubric,
        results=results,
        comparisons=comparisons,
        references=references,
        learning_curve=curve,
        memory=_memory_lines(rubric, data),
        examples=_shown_examples(data, records),
        judgements=records,
        usage_alignment=data.usage_alignment,
        usage_scoring=data.usage_scoring,
        wall_seconds=wall_seconds,
        leakage_checked=data.leakage_checked,
        notes=notes,
    )


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
    for fold, gaps in sorted(data.reflection_gaps.items()):
        for dim, gap in gaps.items():
            notes.append(
                f"fold {fold + 1}, {dim}: reflection failed on {gap.failed_labels} of "
                f"{gap.labels} labels ({gap.error}); {gap.guidelines} guidelines kept"
            )
    return notes
