"""Markdown rendering: the headline table plus per-variant detail, for PRs and notebooks."""

from __future__ import annotations

from pathlib import Path

from judgealign.report.model import EvaluationReport
from judgealign.report.table import (
    COLUMNS,
    fmt_interval,
    fmt_num,
    fmt_spread,
    footer_lines,
    summary_rows,
)


def _cell(text: str) -> str:
    # A pipe inside a cell would split it; newlines would end the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(_cell(h) for h in header) + " |"]
    out.append("|" + "|".join(" --- " for _ in header) + "|")
    out.extend("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)
    return out


def render_markdown(report: EvaluationReport, reference: str = "baseline") -> str:
    """The report as Markdown: headline table, details per variant, run facts.

    >>> print(render_markdown(report))  # doctest: +SKIP
    """
    cfg = report.config
    lines = [f"# {cfg.name or 'Evaluation'}: {cfg.rubric_id} judges vs experts", ""]
    rows = []
    for row in summary_rows(report, reference):
        cells = list(row.cells)
        if row.significant:
            cells[5] = f"**{cells[5]}**"
        rows.append(cells)
    lines += _table(COLUMNS, rows)
    lines += ["", "## Details per variant", ""]
    detail_cols = [
        "Dimension",
        "Variant",
        "n scored",
        "MAE [CI]",
        "Bias [CI]",
        "Exact",
        "Within 1",
        "QWK",
        "Spearman",
        "α (Krippendorff)",
        "N/A agreement",
        "Failed",
    ]
    detail = []
    for dim in cfg.dimensions:
        for variant in cfg.variants:
            r = report.result(variant, dim)
            if r is None:
                continue
            detail.append(
                [
                    dim,
                    variant,
                    f"{r.n_scored}/{r.n_items}",
                    fmt_interval(r.mae),
                    fmt_interval(r.bias),
                    fmt_num(r.exact_agreement),
                    fmt_num(r.within_one),
                    fmt_num(r.qwk),
                    fmt_num(r.spearman),
                    fmt_num(r.krippendorff_alpha),
                    fmt_num(r.na_agreement),
                    str(r.failed),
                ]
            )
    lines += _table(detail_cols, detail)
    if cfg.repeats > 1:
        lines += ["", f"## MAE in each of the {cfg.repeats} repeats of the cross-validation", ""]
        header = ["Dimension", "Variant", *(f"repeat {r + 1}" for r in range(cfg.repeats)), "sd"]
        spread = []
        for r in report.results:
            if r.mae_repeats:
                cells = [fmt_num(x) for x in r.mae_repeats]
                cells += ["—"] * (cfg.repeats - len(cells))
                spread.append(
                    [r.dimension, r.variant, *cells, fmt_spread(r.mae_repeats).strip()[3:]]
                )
        lines += _table(header, spread)
    if report.plan is not None and report.plan.dimensions:
        lines += ["", "## How many labels?", ""]
        rows_plan = []
        for d in report.plan.dimensions:
            power = "—"
            if d.change is not None and d.power_now is not None:
                power = f"{d.power_now:.0%} → {d.power:.0%} (change {d.change:.2f})"
            rows_plan.append(
                [
                    d.dimension,
                    d.variant,
                    f"{d.pilot_labels} ({d.pilot_groups})",
                    f"{d.width_now:.2f} → {d.width:.2f}",
                    "> 20,000 items" if d.labels_for_width is None else str(d.labels_for_width),
                    power,
                    "—"
                    if d.change is None
                    else (
                        "> 20,000 items" if d.labels_for_power is None else str(d.labels_for_power)
                    ),
                ]
            )
        unit = "groups" if report.plan.unit == "cluster" else "items"
        lines += _table(
            [
                "Dimension",
                "Judge",
                f"Pilot labels ({unit})",
                "MAE CI width now → target",
                "Labels for width",
                "Power now → target",
                "Labels for power",
            ],
            rows_plan,
        )
        lines += [f"- no plan for {why}" for why in report.plan.skipped]
        lines += [
            "",
            "Planned by simulation from this run's errors (whole input groups drawn); see the "
            "HTML report for the method and its assumptions.",
        ]
    if report.learning_curve:
        lines += ["", "## Learning curve (MAE by labels used for alignment)", ""]
        curve = [
            [p.dimension, p.variant, str(p.n_labels), fmt_interval(p.mae)]
            for p in report.learning_curve
        ]
        lines += _table(["Dimension", "Variant", "Labels", "MAE [CI]"], curve)
    lines += ["", "## Run", ""]
    lines += [f"- {line}" for line in footer_lines(report)]
    lines.append(f"- judgealign {report.judgealign_version}, created {report.created}")
    return "\n".join(lines) + "\n"


def write_markdown(report: EvaluationReport, path: Path) -> Path:
    """Write ``render_markdown`` to ``path`` (folders created, replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(render_markdown(report), encoding="utf-8")
    tmp.replace(path)
    return path
