"""HTML tables for the report page: run configuration, usage, summaries.

Kept apart from the page layout in ``html.py`` so each stays small (the judgements and what
the judges learned are in ``html_judgements.py``). Every function returns an
HTML fragment in which all report-derived text has passed through ``html.escape``: item ids,
rationales and error messages come from models and user files and must never become markup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from judgealign.providers.types import Usage
from judgealign.report.model import Comparison, EvaluationReport, Interval
from judgealign.report.svg import esc
from judgealign.report.table import describe_statistics, fmt_num, fmt_spread

DASH = "—"


def fmt_p(p: float | None) -> str:
    """A p-value, ``<0.001`` below that.

    >>> fmt_p(0.0001), fmt_p(0.0312)
    ('<0.001', '0.031')
    """
    if p is None or math.isnan(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_pct(x: float | None) -> str:
    """A share as a percentage.

    >>> fmt_pct(0.5)
    '50%'
    """
    return DASH if x is None else f"{x * 100:.0f}%"


def fmt_seconds(s: float) -> str:
    """Seconds as ``12.3 s`` or ``4 min 05 s``.

    >>> fmt_seconds(245)
    '4 min 05 s'
    """
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def _td(value: str, cls: str = "", title: str = "") -> str:
    c = f' class="{esc(cls)}"' if cls else ""
    t = f' title="{esc(title)}"' if title else ""
    return f"<td{c}{t}>{esc(value)}</td>"


def _kv_table(rows: Sequence[tuple[str, str]], cls: str) -> str:
    body = "".join(f"<tr><th scope='row'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">{body}</table>'


def config_table(report: EvaluationReport) -> str:
    """The run configuration as a two-column table."""
    c = report.config
    rubric = f"{c.rubric_id} — {report.rubric.name}" if report.rubric.name else c.rubric_id
    ci = describe_statistics(report)[0].removeprefix("CIs: ")
    ci += f", {c.draw_size} items per draw" if c.draw_size is not None else ", n-from-n draws"
    rows = [
        ("Name", c.name or DASH),
        ("Rubric", rubric),
        ("Judge model", c.model),
        ("Reflection model", c.reflection_model or f"{DASH} (judge model)"),
        ("Embedder", c.embedder or "none (baseline only)"),
        ("Variants", ", ".join(c.variants)),
        ("Dimensions", ", ".join(c.dimensions)),
        ("Items (groups)", f"{c.n_items} ({c.n_groups} groups)"),
        ("Labels", str(c.n_labels)),
        ("Folds / seed", f"{c.folds} / {c.seed}"),
        (
            "Repeats",
            f"{c.repeats} (fold and judge seeds {c.seed}–{c.seed + c.repeats - 1})"
            if c.repeats > 1
            else "1",
        ),
        ("Confidence intervals", ci),
        ("Leakage checked", "yes" if report.leakage_checked else "NO"),
        ("Wall time", fmt_seconds(report.wall_seconds)),
        ("Created", f"{report.created} (judgealign {report.judgealign_version})"),
    ]
    return _kv_table(rows, "config")


def usage_table(report: EvaluationReport) -> str:
    """Calls and tokens spent aligning (reflection, embeddings) and scoring."""
    rows: list[tuple[str, Usage]] = [
        ("Alignment", report.usage_alignment),
        ("Scoring", report.usage_scoring),
        ("Total", report.usage_alignment + report.usage_scoring),
    ]
    head = (
        "<tr><th>Phase</th><th>Calls</th><th>Cached</th><th>Prompt tokens</th>"
        "<th>Completion tokens</th><th>Total tokens</th><th>Provider time</th></tr>"
    )
    body = "".join(
        f"<tr><th scope='row'>{esc(name)}</th>"
        + "".join(
            _td(v, "num")
            for v in (
                f"{u.calls:,}",
                f"{u.cached_calls:,}",
                f"{u.prompt_tokens:,}",
                f"{u.completion_tokens:,}",
                f"{u.total_tokens:,}",
                fmt_seconds(u.seconds),
            )
        )
        + "</tr>"
        for name, u in rows
    )
    return f'<table class="usage"><thead>{head}</thead><tbody>{body}</tbody></table>'


def _iv_cell(
    iv: Interval | None, cls: str = "num", signed: bool = False, spread: list[float] | None = None
) -> str:
    if iv is None:
        return f'<td class="{cls}">{DASH}</td>'
    f = "+.2f" if signed else ".2f"
    sd = fmt_spread(spread or [])
    extra = (
        f"<br><small title='spread of the MAE across {len(spread or [])} repeats'>"
        f"{esc(sd.strip())}</small>"
        if sd
        else ""
    )
    bounds = (
        "no interval"
        if math.isnan(iv.low) or math.isnan(iv.high)
        else f"[{iv.low:{f}}, {iv.high:{f}}]"
    )
    return f'<td class="{cls}">{iv.estimate:{f}}<br><small>{bounds}</small>{extra}</td>'


def _bounds(d: Interval) -> str:
    if math.isnan(d.low) or math.isnan(d.high):
        return "no test: one input group" if d.unit == "cluster" else "no test: one item"
    return f"[{d.low:+.2f}, {d.high:+.2f}]"


def _delta_cells(comp: Comparison) -> list[str]:
    d = comp.delta
    cls = "num better" if d.high < 0 else ("num worse" if d.low > 0 else "num")
    rel = "" if comp.relative_change is None else f" ({comp.relative_change:+.0%})"
    sig = "num sig" if comp.p_holm < 0.05 else "num"
    return [
        f'<td class="{cls}">{esc(f"{d.estimate:+.2f}{rel}")}<br><small>{_bounds(d)}</small></td>',
        f'<td class="{sig}">{esc(fmt_p(comp.p_value))}'
        f"<br><small>({esc(fmt_p(comp.p_holm))})</small></td>",
    ]


def _mae_cell(iv: Interval | None, point: float, spread: list[float] | None = None) -> str:
    return _iv_cell(iv, spread=spread) if iv is not None else _td(fmt_num(point), "num")


def _human_tip(report: EvaluationReport, dim: str) -> str:
    ref = next((r for r in report.references if r.dimension == dim), None)
    if ref is None or ref.human_human_mae is None:
        return ""
    tip = f"{ref.n_multi_rated} multi-rated items"
    if ref.human_human is not None:
        tip += f", CI [{ref.human_human.low:.2f}, {ref.human_human.high:.2f}]"
    if ref.human_alpha is not None:
        tip += f", Krippendorff's alpha among raters {ref.human_alpha:.2f}"
    return tip


def summary_table(report: EvaluationReport, reference: str = "baseline") -> str:
    """Per dimension and variant: the baseline's and the variant's MAE over the same paired
    items (n: the expert and both judges scored them), the change, its p, reference levels.

    One row per comparison, as in the console and Markdown tables: two MAEs side by side are
    always over one set of items. A variant without a comparison (no baseline in the run, or
    no scored pair) shows its own MAE over the items it scored. With repeats, the variant's
    cell adds the spread of its MAE across them.
    """
    variants = report.config.variants or list(dict.fromkeys(r.variant for r in report.results))
    dims = report.config.dimensions or list(dict.fromkeys(r.dimension for r in report.results))
    shown = [v for v in variants if v != reference] or variants
    refs = {r.dimension: r for r in report.references}
    head = "".join(
        f"<th scope='col'{tip}>{label}</th>"
        for label, tip in (
            ("Dimension", ""),
            ("Variant", ""),
            ("n", " title='items the expert and both judges scored: both MAEs are over these'"),
            (f"{esc(reference)}<br>MAE [CI]", ""),
            ("MAE [CI]", ""),
            (f"Δ vs {esc(reference)} [CI]", ""),
            ("p<br>(Holm p)", ""),
            ("median<br>predictor<br>MAE", ""),
            (
                "calibrated<br>baseline<br>MAE",
                " title='the baseline through an affine map fitted per fold on its training "
                "items: scale correction alone'",
            ),
            ("human-<br>human<br>MAE", ""),
        )
    )
    rows = []
    for dim in dims:
        present = [(v, r) for v in shown if (r := report.result(v, dim)) is not None]
        ref = refs.get(dim)
        hh = ref.human_human_mae if ref else None
        span = f" rowspan='{len(present)}'" if len(present) > 1 else ""
        for i, (v, res) in enumerate(present):
            comp = report.comparison(dim, v) if v != reference else None
            cells = [f"<th scope='row'{span}>{esc(dim)}</th>"] if i == 0 else []
            cells.append(_td(v, f"variant v-{v}"))
            if comp is not None:
                cells.append(_td(str(comp.n), "num"))
                cells.append(_mae_cell(comp.reference_mae, comp.mae_reference))
                cells.append(_mae_cell(comp.variant_mae, comp.mae_variant, res.mae_repeats))
                cells += _delta_cells(comp)
            else:
                cells.append(_td(str(res.n_scored), "num"))
                cells += [
                    _td(DASH, "num"),
                    _iv_cell(res.mae, spread=res.mae_repeats),
                    _td(DASH, "num"),
                    _td(DASH, "num"),
                ]
            if i == 0:
                cells.append(_td(fmt_num(ref.median_predictor_mae if ref else None), "num"))
                cells.append(_td(fmt_num(ref.calibrated_baseline_mae if ref else None), "num"))
                cells.append(_td(fmt_num(hh), "num", _human_tip(report, dim)))
                cells[-3:] = [c.replace("<td", f"<td{span}", 1) for c in cells[-3:]]
            rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        rows.append("<tr><td colspan='10'>No results.</td></tr>")
    return (
        f'<table class="summary" id="summary-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def agreement_table(report: EvaluationReport) -> str:
    """Per dimension and variant: agreement statistics, N/A handling, failures."""
    head = "".join(
        f"<th scope='col'>{esc(h)}</th>"
        for h in (
            "Dimension", "Variant", "Items", "Scored", "MAE [CI]", "Bias [CI]", "Exact",
            "Within ±1", "QWK", "Spearman", "Krippendorff α", "N/A agreement",
            "N/A expert only", "N/A judge only", "Failed",
        )
    )  # fmt: skip
    order = {d: i for i, d in enumerate(report.config.dimensions)}
    vorder = {v: i for i, v in enumerate(report.config.variants)}
    results = sorted(
        report.results, key=lambda r: (order.get(r.dimension, 99), vorder.get(r.variant, 99))
    )
    rows = []
    for r in results:
        cells = [
            _td(r.dimension),
            _td(r.variant, f"variant v-{r.variant}"),
            _td(str(r.n_items), "num"),
            _td(str(r.n_scored), "num"),
            _iv_cell(r.mae, spread=r.mae_repeats),
            _iv_cell(r.bias, signed=True),
            _td(fmt_pct(r.exact_agreement), "num"),
            _td(fmt_pct(r.within_one), "num"),
            _td(fmt_num(r.qwk), "num"),
            _td(fmt_num(r.spearman), "num"),
            _td(fmt_num(r.krippendorff_alpha), "num"),
            _td(fmt_pct(r.na_agreement), "num"),
            _td(str(r.na_expert_only), "num"),
            _td(str(r.na_judge_only), "num"),
            _td(str(r.failed), "num warn" if r.failed else "num"),
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        rows.append("<tr><td colspan='15'>No results.</td></tr>")
    return (
        f'<table class="agreement"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
