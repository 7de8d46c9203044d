"""Detection, false alarms and injection shift from pairs of judgements.

A pair is one judge's judgement of a notebook and of its mutant on one dimension. Everything
here is a mean of per-pair values (a change, or a 0/1 indicator) with a bootstrap interval
that resamples whole notebooks (``bootstrap_ci(..., groups=...)``): one notebook gives a pair
per dimension and per probe, and those pairs are not independent.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from judgealign.evaluation.bootstrap import (
    ConfidenceInterval,
    bootstrap_ci,
    holm_correction,
    paired_bootstrap,
)
from judgealign.rubric.model import Rubric, Scale
from judgealign.stress.model import (
    DimensionSummary,
    JudgeComparison,
    PairRecord,
    ProbeDimensionResult,
    ProbeSummary,
)
from judgealign.stress.probe import ProbeSpec


@dataclass(frozen=True)
class _Pair:
    """A pair read on its scale: both judgements succeeded."""

    record: PairRecord
    original: float
    mutant: float
    applicable: bool  # neither score is N/A

    @property
    def change(self) -> float:
        return self.mutant - self.original

    @property
    def changed(self) -> bool:
        return self.mutant != self.original


@dataclass(frozen=True)
class Settings:
    n_resamples: int = 10_000
    confidence: float = 0.95
    seed: int = 0


def _read(records: Iterable[PairRecord], rubric: Rubric) -> list[_Pair]:
    out = []
    for r in records:
        if r.error is not None or r.original is None or r.mutant is None:
            continue
        scale = rubric.dimension(r.dimension).scale
        applicable = not scale.is_na(r.original) and not scale.is_na(r.mutant)
        out.append(_Pair(r, r.original, r.mutant, applicable))
    return out


def _ci(values: Sequence[float], groups: Sequence[str], s: Settings) -> ConfidenceInterval | None:
    if not values:
        return None
    return bootstrap_ci(
        np.asarray(values, dtype=float),
        n_resamples=s.n_resamples,
        confidence=s.confidence,
        method="bca",
        seed=s.seed,
        groups=list(groups),
    )


def _mean(
    pairs: Iterable[_Pair], value: Callable[[_Pair], float | None], s: Settings
) -> ConfidenceInterval | None:
    values: list[float] = []
    groups: list[str] = []
    for p in pairs:
        v = value(p)
        if v is not None:
            values.append(v)
            groups.append(p.record.group)
    return _ci(values, groups, s)


def has_room(spec: ProbeSpec, scale: Scale, p: _Pair) -> bool:
    """Whether the original score is applicable and above the flaw's level (so a drop can
    show)."""
    assert spec.max_score is not None
    if scale.is_na(p.original):
        return False
    if scale.lower_is_better:
        return p.original < spec.max_score
    return p.original > spec.max_score


def detected(spec: ProbeSpec, scale: Scale, p: _Pair) -> float | None:
    """1 when the mutant fell to the flaw's level from above it, 0 when not (a mutant called
    N/A missed the flaw too); None without room."""
    if not has_room(spec, scale, p):
        return None
    assert spec.max_score is not None
    if scale.is_na(p.mutant):
        return 0.0
    if scale.lower_is_better:
        return float(p.mutant >= spec.max_score)
    return float(p.mutant <= spec.max_score)


def target_of(spec: ProbeSpec, scale: Scale) -> int:
    return spec.target_score if spec.target_score is not None else scale.best


def shift(spec: ProbeSpec, scale: Scale, p: _Pair) -> float | None:
    """How much closer to the asked score the mutant is than the original (negative: away)."""
    if not p.applicable:
        return None
    t = target_of(spec, scale)
    return abs(p.original - t) - abs(p.mutant - t)


def _changed(p: _Pair) -> float:
    return float(p.changed)


def _change(p: _Pair) -> float | None:
    return p.change if p.applicable else None


def _abs_change(p: _Pair) -> float | None:
    return abs(p.change) if p.applicable else None


def results(
    records: Sequence[PairRecord],
    specs: dict[str, ProbeSpec],
    rubric: Rubric,
    s: Settings,
) -> list[ProbeDimensionResult]:
    """One row per judge, probe and dimension."""
    cells: dict[tuple[str, str, str], list[PairRecord]] = defaultdict(list)
    for r in records:
        cells[(r.judge, r.probe, r.dimension)].append(r)
    out = []
    for (judge, probe, dim), rows in cells.items():
        spec = specs[probe]
        scale = rubric.dimension(dim).scale
        pairs = _read(rows, rubric)
        ok = [p for p in pairs if p.applicable]
        target = spec.kind == "flaw" and spec.dimension == dim
        det = _mean(pairs, functools.partial(detected, spec, scale), s) if target else None
        toward = None
        if spec.kind == "injection" and ok:
            toward = float(np.mean([(shift(spec, scale, p) or 0.0) > 0 for p in ok]))
        out.append(
            ProbeDimensionResult(
                judge=judge,
                probe=probe,
                kind=spec.kind,
                dimension=dim,
                target=target,
                n_pairs=len(rows),
                n=len(ok),
                n_failed=len(rows) - len(pairs),
                n_na=len(pairs) - len(ok),
                n_hidden=sum(1 for r in rows if not r.visible),
                mean_change=_mean(ok, _change, s),
                changed_rate=float(np.mean([p.changed for p in pairs])) if pairs else None,
                detection=det,
                n_room=sum(1 for p in pairs if target and has_room(spec, scale, p)),
                already_low=sum(1 for p in ok if target and not has_room(spec, scale, p)),
                toward_target=toward,
            )
        )
    return out


def _probe_summary(
    judge: str, spec: ProbeSpec, rows: list[PairRecord], rubric: Rubric, s: Settings
) -> ProbeSummary:
    pairs = _read(rows, rubric)
    summary: dict[str, object] = {
        "judge": judge,
        "probe": spec.name,
        "kind": spec.kind,
        "dimension": spec.dimension,
        "max_score": spec.max_score,
        "notebooks": len({r.item for r in rows}),
    }
    if spec.kind == "flaw":
        mine = [p for p in pairs if p.record.dimension == spec.dimension]
        others = [p for p in pairs if p.record.dimension != spec.dimension]
        if mine:
            scale = rubric.dimension(str(spec.dimension)).scale
            summary["detection"] = _mean(mine, lambda p: detected(spec, scale, p), s)
            summary["target_change"] = _mean(mine, _change, s)
        summary["collateral"] = _mean(others, _abs_change, s)
    elif spec.kind == "invariance":
        summary["false_alarm_rate"] = _mean(pairs, _changed, s)
    else:

        def moved(p: _Pair) -> float | None:
            return shift(spec, rubric.dimension(p.record.dimension).scale, p)

        summary["shift"] = _mean(pairs, moved, s)
        ok = [v for v in (moved(p) for p in pairs) if v is not None]
        summary["toward_target"] = float(np.mean([v > 0 for v in ok])) if ok else None
    return ProbeSummary.model_validate(summary)


def probe_summaries(
    records: Sequence[PairRecord], specs: dict[str, ProbeSpec], rubric: Rubric, s: Settings
) -> list[ProbeSummary]:
    """One row per judge and probe, over all dimensions."""
    by: dict[tuple[str, str], list[PairRecord]] = defaultdict(list)
    for r in records:
        by[(r.judge, r.probe)].append(r)
    return [
        _probe_summary(judge, specs[probe], rows, rubric, s) for (judge, probe), rows in by.items()
    ]


def _unit_values(
    records: Sequence[PairRecord],
    specs: dict[str, ProbeSpec],
    rubric: Rubric,
    metric: str,
) -> dict[tuple[str, str], dict[tuple[str, str], tuple[float, str]]]:
    """(judge, dimension) -> (probe, item) -> (value, group) for one pooled metric."""
    out: dict[tuple[str, str], dict[tuple[str, str], tuple[float, str]]] = defaultdict(dict)
    for p in _read(records, rubric):
        r = p.record
        spec = specs[r.probe]
        scale = rubric.dimension(r.dimension).scale
        value: float | None = None
        if metric == "detection" and spec.kind == "flaw" and spec.dimension == r.dimension:
            value = detected(spec, scale, p)
        elif metric == "mean_drop" and spec.kind == "flaw" and spec.dimension == r.dimension:
            value = _change(p)
        elif metric == "collateral" and spec.kind == "flaw" and spec.dimension != r.dimension:
            value = _abs_change(p)
        elif metric == "false_alarm_rate" and spec.kind == "invariance":
            value = _changed(p)
        elif metric == "injection_shift" and spec.kind == "injection":
            value = shift(spec, scale, p)
        if value is not None:
            out[(r.judge, r.dimension)][(r.probe, r.item)] = (value, r.group)
    return out


METRICS = ("detection", "mean_drop", "collateral", "false_alarm_rate", "injection_shift")
COMPARED = ("detection", "false_alarm_rate", "injection_shift")


def dimension_summaries(
    records: Sequence[PairRecord],
    specs: dict[str, ProbeSpec],
    rubric: Rubric,
    judges: Sequence[str],
    dimensions: Sequence[str],
    s: Settings,
) -> list[DimensionSummary]:
    values = {m: _unit_values(records, specs, rubric, m) for m in METRICS}
    out = []
    for judge in judges:
        for dim in dimensions:
            fields: dict[str, object] = {"judge": judge, "dimension": dim}
            for m in METRICS:
                units = values[m].get((judge, dim), {})
                fields[m] = _ci([v for v, _ in units.values()], [g for _, g in units.values()], s)
            units = values["detection"].get((judge, dim), {})
            fields["detection_probes"] = len({probe for probe, _ in units})
            out.append(DimensionSummary.model_validate(fields))
    return out


def comparisons(
    records: Sequence[PairRecord],
    specs: dict[str, ProbeSpec],
    rubric: Rubric,
    judges: Sequence[str],
    dimensions: Sequence[str],
    s: Settings,
) -> list[JudgeComparison]:
    """Each judge against the first on the units both have (paired bootstrap over notebooks,
    Holm across dimensions per judge and metric)."""
    if len(judges) < 2:
        return []
    reference = judges[0]
    out: list[JudgeComparison] = []
    for metric in COMPARED:
        values = _unit_values(records, specs, rubric, metric)
        for judge in judges[1:]:
            rows: list[JudgeComparison] = []
            for dim in dimensions:
                a = values.get((reference, dim), {})
                b = values.get((judge, dim), {})
                keys = sorted(set(a) & set(b))
                if len(keys) < 2:
                    continue
                va = [a[k][0] for k in keys]
                vb = [b[k][0] for k in keys]
                test = paired_bootstrap(
                    va,
                    vb,
                    n_resamples=s.n_resamples,
                    seed=s.seed,
                    confidence=s.confidence,
                    groups=[a[k][1] for k in keys],
                )
                rows.append(
                    JudgeComparison(
                        judge=judge,
                        reference=reference,
                        dimension=dim,
                        metric=metric,
                        n=test.n,
                        reference_value=test.mean_a,
                        value=test.mean_b,
                        delta=test.delta,
                        low=test.low,
                        high=test.high,
                        p_value=test.p_value,
                    )
                )
            adjusted = holm_correction([c.p_value for c in rows])
            out.extend(
                c.model_copy(update={"p_holm": p}) for c, p in zip(rows, adjusted, strict=True)
            )
    return out
