"""The stress report on a terminal (rich tables) or as plain text."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from judgealign.evaluation.bootstrap import ConfidenceInterval
from judgealign.stress.model import StressReport

DASH = "-"


def fmt_ci(ci: ConfidenceInterval | None, *, signed: bool = False, n: bool = True) -> str:
    """``0.40 [0.10, 0.70] n=5``; a dash when there is nothing to show.

    >>> from judgealign.evaluation.bootstrap import bootstrap_ci
    >>> fmt_ci(bootstrap_ci([0.0, 1.0, 1.0, 0.0], n_resamples=200, seed=0))
    '0.50 [0.00, 1.00] n=4'
    """
    if ci is None or ci.n == 0:
        return DASH
    sign = "+" if signed else ""
    text = f"{ci.estimate:{sign}.2f}"
    if ci.low == ci.low and ci.high == ci.high:  # not NaN
        text += f" [{ci.low:{sign}.2f}, {ci.high:{sign}.2f}]"
    return f"{text} n={ci.n}" if n else text


def _dimension_table(report: StressReport, judge: str) -> Table:
    table = Table(title=f"{judge}: per dimension", title_justify="left")
    for col in ("dimension", "detection", "mean change", "collateral |Δ|", "false alarms",
                "injection shift"):  # fmt: skip
        table.add_column(col, justify="left" if col == "dimension" else "right")
    for dim in report.config.dimensions:
        s = report.dimension(judge, dim)
        if s is None:
            continue
        table.add_row(
            dim,
            fmt_ci(s.detection),
            fmt_ci(s.mean_drop, signed=True, n=False),
            fmt_ci(s.collateral, n=False),
            fmt_ci(s.false_alarm_rate),
            fmt_ci(s.injection_shift, signed=True),
        )
    return table


def _flaw_table(report: StressReport, judge: str) -> Table:
    table = Table(title=f"{judge}: flaws", title_justify="left")
    for col in ("probe", "dimension", "≤", "notebooks", "detection", "target Δ", "collateral |Δ|"):
        table.add_column(col, justify="left" if col in ("probe", "dimension") else "right")
    for p in report.probes:
        if p.judge != judge or p.kind != "flaw":
            continue
        table.add_row(
            p.probe,
            p.dimension or DASH,
            str(p.max_score),
            str(p.notebooks),
            fmt_ci(p.detection),
            fmt_ci(p.target_change, signed=True, n=False),
            fmt_ci(p.collateral, n=False),
        )
    return table


def _other_table(report: StressReport, judge: str) -> Table:
    table = Table(title=f"{judge}: invariance and injection", title_justify="left")
    for col in ("probe", "kind", "notebooks", "false alarms", "shift to the ask", "moved to it"):
        table.add_column(col, justify="left" if col in ("probe", "kind") else "right")
    for p in report.probes:
        if p.judge != judge or p.kind == "flaw":
            continue
        table.add_row(
            p.probe,
            p.kind,
            str(p.notebooks),
            fmt_ci(p.false_alarm_rate),
            fmt_ci(p.shift, signed=True),
            DASH if p.toward_target is None else f"{p.toward_target:.0%}",
        )
    return table


def _comparison_table(report: StressReport) -> Table:
    table = Table(title="judges compared (paired, same notebooks)", title_justify="left")
    for col in ("judge", "metric", "dimension", "n", "reference", "judge value", "Δ [CI]",
                "Holm p"):  # fmt: skip
        table.add_column(
            col, justify="left" if col in ("judge", "metric", "dimension") else "right"
        )
    for c in report.comparisons:
        table.add_row(
            f"{c.judge} vs {c.reference}",
            c.metric,
            c.dimension,
            str(c.n),
            f"{c.reference_value:.2f}",
            f"{c.value:.2f}",
            f"{c.delta:+.2f} [{c.low:+.2f}, {c.high:+.2f}]",
            f"{c.p_holm:.3g}",
        )
    return table


def render_console(report: StressReport, console: Console) -> None:
    """Print the report's tables, its notes and what it cost."""
    for judge in (j.label for j in report.config.judges):
        console.print(_dimension_table(report, judge))
        if any(p.judge == judge and p.kind == "flaw" for p in report.probes):
            console.print(_flaw_table(report, judge))
        if any(p.judge == judge and p.kind != "flaw" for p in report.probes):
            console.print(_other_table(report, judge))
    if report.comparisons:
        console.print(_comparison_table(report))
    applied = sum(a.applied for a in report.applicability)
    skipped = [a.probe for a in report.applicability if a.applied == 0]
    console.print(
        f"{applied} mutant(s) of {report.config.n_items} notebook(s) from "
        f"{len(report.applicability)} probe(s)"
        + (f"; never applicable here: {', '.join(skipped)}" if skipped else ""),
        highlight=False,
    )
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    u = report.usage
    console.print(
        f"model calls: {u.calls} (+{u.cached_calls} cached), tokens: {u.prompt_tokens} prompt / "
        f"{u.completion_tokens} completion; {report.wall_seconds:.0f} s",
        highlight=False,
    )


def render_text(report: StressReport, width: int = 150) -> str:
    console = Console(record=True, width=width, file=io.StringIO())
    render_console(report, console)
    return console.export_text()
