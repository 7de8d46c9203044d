"""The headline table, as plain strings, shared by the console and Markdown renderers.

One row per (dimension, aligned variant): the baseline's MAE and the variant's MAE with
their intervals, the paired change and its p-values, and the reference levels a judge must
beat. Both MAEs of a row, and its change, are over one set of items, the paired set (the
expert and both judges gave a score), whose size is the row's n: a baseline over 25 items
beside a variant over 24 would compare different things. Keeping the formatting here means
the console and the Markdown file never disagree.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from judgealign.report.model import Comparison, EvaluationReport, Interval

COLUMNS = (
    "Dimension",
    "Variant",
    "n",
    "Baseline MAE [CI]",
    "Aligned MAE [CI]",
    "Change",
    "p (Holm)",
    "Bias",
    "Median pred.",
    "Calib. base",
    "Human-human",
)


@dataclass(frozen=True)
class SummaryRow:
    """One formatted row; ``significant`` marks a Holm-adjusted p below 0.05."""

    cells: tuple[str, ...]
    significant: bool = False
    better: bool | None = None  # True when the variant's MAE is lower than the baseline's


def fmt_interval(iv: Interval | None, digits: int = 2) -> str:
    """``0.42 [0.30, 0.55]``, or an em dash when there is nothing to show.

    >>> fmt_interval(Interval(estimate=0.5, low=0.25, high=0.75))
    '0.50 [0.25, 0.75]'
    """
    if iv is None:
        return "—"
    if math.isnan(iv.low) or math.isnan(iv.high):
        return f"{iv.estimate:.{digits}f} [—]"
    return f"{iv.estimate:.{digits}f} [{iv.low:.{digits}f}, {iv.high:.{digits}f}]"


def fmt_p(p: float | None) -> str:
    """p-values to two significant digits, with a floor instead of a misleading zero; an em
    dash where there is no test (NaN: fewer than two units to resample).

    >>> fmt_p(0.0004), fmt_p(0.042), fmt_p(float("nan"))
    ('<0.001', '0.04', '—')
    """
    if p is None or math.isnan(p):
        return "—"
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def fmt_num(x: float | None, digits: int = 2, signed: bool = False) -> str:
    """A number with ``digits`` decimals (``signed``: always with its sign), or an em dash.

    >>> fmt_num(None), fmt_num(0.12345), fmt_num(0.5, signed=True)
    ('—', '0.12', '+0.50')
    """
    if x is None or math.isnan(x):
        return "—"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def fmt_score(x: float | None, na_value: int | None = None) -> str:
    """A score or an error: integers as they are, others with two decimals; N/A for
    ``na_value``; an em dash for nothing.

    >>> fmt_score(3.0), fmt_score(13 / 3), fmt_score(0.0, na_value=0), fmt_score(None)
    ('3', '4.33', 'N/A', '—')
    """
    if x is None:
        return "—"
    if na_value is not None and x == na_value:
        return "N/A"
    return str(int(x)) if float(x).is_integer() else f"{x:.2f}"


def fmt_spread(per_repeat: list[float], digits: int = 2) -> str:
    """`` sd 0.03`` (the standard deviation of a variant's MAE across repeats), or nothing
    with fewer than two repeats.

    >>> fmt_spread([0.5, 0.6, 0.7]), fmt_spread([])
    (' sd 0.10', '')
    """
    kept = [x for x in per_repeat if not math.isnan(x)]
    if len(kept) < 2:
        return ""
    return f" sd {statistics.stdev(kept):.{digits}f}"


def describe_statistics(report: EvaluationReport) -> list[str]:
    """How the intervals and tests were made, in words: every report says it.

    >>> describe_statistics(report)[0]  # doctest: +SKIP
    'CIs: 95% bca bootstrap over 40 input groups (...), 10000 resamples, ...'
    """
    cfg = report.config
    intervals = [r.mae for r in report.results if r.mae is not None]
    level = f"{intervals[0].confidence:.0%} " if intervals else ""
    groups = max((iv.n_groups or 0 for iv in intervals), default=0) or cfg.n_groups
    if cfg.bootstrap == "cluster":
        unit = (
            f"over {groups} input groups (items sharing an input are resampled together: "
            "they are not independent)"
        )
    else:
        unit = "over items"
        if cfg.n_groups < cfg.n_items:
            unit += " (although items share inputs: these intervals are too narrow)"
    widened = ", widened for small samples" if any(iv.expanded for iv in intervals) else ""
    lines = [f"CIs: {level}{cfg.ci_method} bootstrap {unit}, {cfg.n_resamples} resamples{widened}"]
    test = "groups" if cfg.bootstrap == "cluster" else "items"
    if cfg.repeats > 1:
        test += f" x {cfg.repeats} repeats"
    lines.append(
        "change = aligned - baseline MAE (negative is better); paired bootstrap p resampling "
        f"{test}, Holm across dimensions"
    )
    if cfg.repeats > 1:
        lines.append(
            f"{cfg.repeats} repeats of the grouped CV (fold and judge seeds {cfg.seed}.."
            f"{cfg.seed + cfg.repeats - 1}): MAE over each item's error averaged across repeats; "
            "sd = spread of a variant's MAE across repeats (alignment variance, not in its CI); "
            "the paired tests include it"
        )
    return lines


def paired_cells(cmp: Comparison) -> tuple[str, str]:
    """The two MAEs a comparison is about, over its ``n`` paired items (point estimates
    alone for reports made before the paired intervals were stored).

    >>> iv = Interval(estimate=0.5, low=0.25, high=0.75)
    >>> cmp = Comparison(dimension="d", reference="baseline", variant="full", n=4,
    ...     mae_reference=0.5, mae_variant=0.25, delta=iv, p_value=0.3, p_holm=0.3)
    >>> paired_cells(cmp)
    ('0.50', '0.25')
    >>> paired_cells(cmp.model_copy(update={"reference_mae": iv}))[0]
    '0.50 [0.25, 0.75]'
    """
    ref = fmt_interval(cmp.reference_mae) if cmp.reference_mae else fmt_num(cmp.mae_reference)
    var = fmt_interval(cmp.variant_mae) if cmp.variant_mae else fmt_num(cmp.mae_variant)
    return ref, var


def summary_rows(report: EvaluationReport, reference: str = "baseline") -> list[SummaryRow]:
    """Rows of the headline table (see ``COLUMNS``), dimensions in rubric order.

    A variant compared with the baseline shows both MAEs and n over their paired items.
    Without a baseline in the run (or without a scored pair), a variant's row shows only its
    own MAE, over the items it scored.
    """
    variants = list(report.config.variants)
    aligned = [v for v in variants if v != reference] or variants
    refs = {r.dimension: r for r in report.references}
    rows: list[SummaryRow] = []
    for dim in report.config.dimensions:
        first = True
        for variant in aligned:
            res = report.result(variant, dim)
            if res is None:
                continue
            cmp = report.comparison(dim, variant) if variant != reference else None
            ref = refs.get(dim)
            if cmp is not None:
                rel = f" ({cmp.relative_change:+.0%})" if cmp.relative_change is not None else ""
                change = f"{cmp.delta.estimate:+.2f}{rel}"
                p = f"{fmt_p(cmp.p_value)} ({fmt_p(cmp.p_holm)})"
                n = cmp.n
                base_mae, own_mae = paired_cells(cmp)
            else:
                change, p = "—", "—"
                n, base_mae, own_mae = res.n_scored, "—", fmt_interval(res.mae)
            rows.append(
                SummaryRow(
                    cells=(
                        dim if first else "",
                        variant,
                        str(n),
                        base_mae,
                        own_mae + fmt_spread(res.mae_repeats),
                        change,
                        p,
                        fmt_num(res.bias.estimate if res.bias else None, signed=True),
                        fmt_num(ref.median_predictor_mae if ref else None),
                        fmt_num(ref.calibrated_baseline_mae if ref else None),
                        fmt_num(ref.human_human_mae if ref else None),
                    ),
                    significant=cmp is not None and cmp.p_holm < 0.05,
                    better=None if cmp is None else cmp.delta.estimate < 0,
                )
            )
            first = False
    return rows


def reference_lines(report: EvaluationReport, *, paired_n: bool = False) -> list[str]:
    """Per dimension, the levels a judge must beat: the median predictor, the calibrated
    baseline (the baseline's scores through a per-fold affine map, no call) and human-human.

    For a console too narrow for the table's reference columns; the other reports show them.
    With ``paired_n`` each line starts with the rows' n (for a table too narrow for its n
    column).
    """
    out = []
    n_of: dict[str, list[str]] = {}
    dim = ""
    for row in summary_rows(report) if paired_n else []:
        dim = row.cells[0] or dim
        n_of.setdefault(dim, []).append(f"{row.cells[2]} {row.cells[1]}")
    for ref in report.references:
        n = f"n = {', '.join(n_of[ref.dimension])}; " if ref.dimension in n_of else ""
        out.append(
            f"{ref.dimension}: {n}median predictor {fmt_num(ref.median_predictor_mae)}, "
            f"calibrated baseline {fmt_num(ref.calibrated_baseline_mae)}, "
            f"human-human {fmt_num(ref.human_human_mae)} (MAE)"
        )
    return out


def human_lines(report: EvaluationReport) -> list[str]:
    """Per dimension with several raters per item: how far they are from each other.

    >>> human_lines(report)  # doctest: +SKIP
    ['model_use: 3 raters on 12 items: human-human MAE 0.42 [0.30, 0.55], α 0.61']
    """
    out = []
    for ref in report.references:
        if ref.human_human is None:
            continue
        alpha = (
            f", Krippendorff's α {fmt_num(ref.human_alpha)}" if ref.human_alpha is not None else ""
        )
        out.append(
            f"{ref.dimension}: {ref.n_raters} raters on {ref.n_multi_rated} items: human-human "
            f"MAE {fmt_interval(ref.human_human)}{alpha} (a judge nearer the experts than they "
            "are to each other is fitting noise)"
        )
    return out


def footer_lines(report: EvaluationReport) -> list[str]:
    """Run facts worth a glance under the table: calls, tokens, time, leakage check."""
    cfg = report.config
    ua, us = report.usage_alignment, report.usage_scoring
    lines = [
        f"{cfg.n_items} items in {cfg.n_groups} groups, {cfg.n_labels} labels, "
        f"{cfg.folds}-fold grouped CV, seed {cfg.seed}; model {cfg.model}, "
        f"embedder {cfg.embedder or 'none'}",
        f"alignment: {ua.calls} calls, {ua.prompt_tokens + ua.completion_tokens} tokens; "
        f"scoring: {us.calls} calls, {us.prompt_tokens + us.completion_tokens} tokens; "
        f"wall {report.wall_seconds:.0f} s",
        *describe_statistics(report),
        "n: items the expert and both judges scored, over which both MAEs are computed",
    ]
    if cfg.draw_size is not None:
        lines.append(
            f"WARNING: reference scheme ({cfg.draw_size} draws per resample) understates "
            "uncertainty; use the default n-of-n bootstrap for claims"
        )
    lines.extend(human_lines(report))
    lines.append(
        "leakage check: passed (no test item in any judge's memory)"
        if report.leakage_checked
        else "leakage check: not run"
    )
    lines.extend(report.notes)
    return lines


# Below this many pilot groups the spread between groups is too poorly known to plan from.
FEW_PILOT_GROUPS = 10


def _labels(n: int | None) -> str:
    return "more than the planner tries (20,000 items)" if n is None else f"~{n:,} labels"


def plan_lines(report: EvaluationReport) -> list[str]:
    """Per dimension, the labels needed (from the report's plan), one line each.

    >>> plan_lines(report)[0]  # doctest: +SKIP
    'labels needed, model_use (full; pilot: 24 labels in 4 groups): MAE ±0.10 ...'
    """
    plan = report.plan
    if plan is None:
        return []
    out = []
    for d in plan.dimensions:
        unit = "groups" if plan.unit == "cluster" else "items"
        head = (
            f"labels needed, {d.dimension} ({d.variant}; pilot: {d.pilot_labels} labels, "
            f"{d.pilot_groups} {unit}): "
        )
        now = f"now {d.width_now:.2f}"
        parts = [f"MAE interval {d.width:.2f} wide ({now}): {_labels(d.labels_for_width)}"]
        if d.change is not None and d.power_now is not None:
            parts.append(
                f"a change of {d.change:.2f} vs {d.reference} at {d.power:.0%} power "
                f"(now {d.power_now:.0%}): {_labels(d.labels_for_power)}"
            )
        line = head + "; ".join(parts)
        if d.pilot_groups < FEW_PILOT_GROUPS:
            line += f" (rough: only {d.pilot_groups} pilot {unit})"
        out.append(line)
    out.extend(f"no plan for {why}" for why in plan.skipped)
    if out:
        out.append(
            "  planned by simulation from this run's errors (`judgealign plan RUN --width W "
            "--change D` for other targets)"
        )
    return out
