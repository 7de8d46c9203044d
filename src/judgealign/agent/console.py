"""Console tables for a scoreboard and a comparison (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from judgealign.agent.board import ScoreboardModel, finite
from judgealign.agent.comparison import ComparisonModel
from judgealign.evaluation.bootstrap import ConfidenceInterval

GAPS_SHOWN = 3
REASON_CHARS = 110


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not finite(value) else f"{value:.{digits}f}"


def fmt_ci(ci: ConfidenceInterval | None) -> str:
    if ci is None:
        return "-"
    if not (finite(ci.low) and finite(ci.high)):
        return f"{ci.estimate:.2f}"
    return f"{ci.estimate:.2f} [{ci.low:.2f}, {ci.high:.2f}]"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def short(text: str, n: int = REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def render_scoreboard(board: ScoreboardModel, console: Console) -> None:
    """The scoreboard, failures, per-tag means and the top gaps per dimension."""
    failed = f", {board.notebooks_failed} failed" if board.notebooks_failed else ""
    table = Table(
        title=f"agent {board.version} on suite {board.suite.name}: {board.cases_total} cases, "
        f"{board.notebooks_total} notebooks{failed}",
        title_justify="left",
    )
    for col in ("dimension", "scored", "mean [95% CI]", "lowest", "N/A", "failed"):
        table.add_column(col, justify="left" if col == "dimension" else "right")
    for d in board.dims:
        na = f"{d.na}/{d.judged} ({pct(d.na_rate)})" if d.judged else "-"
        table.add_row(
            d.dimension,
            f"{d.scored} ({d.cases} cases)",
            fmt_ci(d.mean),
            pct(d.lowest),
            na,
            str(d.failed) if d.failed else "",
        )
    console.print(table)
    console.print(
        "mean: applicable scores, cases resampled (cluster bootstrap); lowest: share of the "
        "worst score; N/A: not-applicable answers among judgements",
        style="dim",
        highlight=False,
    )
    if board.cases_failed or board.notebooks_failed:
        kinds = ", ".join(f"{k} {n}" for k, n in board.failures.items())
        console.print(
            f"[yellow]failed:[/yellow] {board.cases_failed} of {board.cases_total} cases wrote no "
            f"notebook; {board.notebooks_failed} notebooks failed ({escape(kinds)})",
            highlight=False,
        )
        for c in board.cases:
            for why in c.failures:
                console.print(f"  {escape(c.case)} {escape(short(why))}", highlight=False)
    if board.execution_errors:
        console.print(
            f"[yellow]execution:[/yellow] {board.execution_errors} notebooks raised or timed "
            "out when executed",
            highlight=False,
        )
    if len(board.tags) > 1:
        tags = Table(title="by tag", title_justify="left")
        tags.add_column("tag")
        tags.add_column("cases", justify="right")
        for dim in board.dimensions:
            tags.add_column(dim[:16], justify="right")
        for t in board.tags:
            tags.add_row(t.tag, str(t.cases), *(fmt(t.scores.get(d)) for d in board.dimensions))
        console.print(tags)
    if board.gaps:
        console.print("[bold]Gaps[/bold] (recurring reasons for low scores)", highlight=False)
        for dim in board.dimensions:
            for g in board.gaps_for(dim)[:GAPS_SHOWN]:
                console.print(
                    f"  {dim} x{g.count} ({g.mean_score:.1f}): {escape(short(g.reason))} "
                    f"[dim]{escape(', '.join(g.notebooks[:4]))}"
                    f"{' ...' if len(g.notebooks) > 4 else ''}[/dim]",
                    highlight=False,
                )
    gen, sco = board.usage_generation, board.usage_scoring
    console.print(
        f"generation: {gen.calls} model calls (+{gen.cached_calls} cached), "
        f"{gen.prompt_tokens + gen.completion_tokens} tokens; scoring: {sco.calls} calls "
        f"(+{sco.cached_calls} cached), {sco.prompt_tokens + sco.completion_tokens} tokens; "
        f"{board.wall_seconds:.0f} s",
        style="dim",
        highlight=False,
    )


def render_comparison(cmp: ComparisonModel, console: Console) -> None:
    """Per dimension A vs B with the paired test, then the cases that moved."""
    table = Table(
        title=f"{cmp.version_a} -> {cmp.version_b} on suite {cmp.suite}: "
        f"{cmp.cases_compared} cases compared",
        title_justify="left",
    )
    cols = ("dimension", cmp.version_a, cmp.version_b, "Δ [95% CI]", "p", "Holm p", "cases")
    for col in cols:
        table.add_column(col, justify="left" if col == "dimension" else "right")
    for d in cmp.dims:
        t = d.test
        if t is None:
            table.add_row(d.dimension, "-", "-", "-", "-", "-", str(d.cases))
            continue
        delta = f"{t.delta:+.2f} [{t.low:+.2f}, {t.high:+.2f}]"
        if d.better is not None:
            colour = "green" if d.better == "b" else "red"
            delta = f"[{colour}]{delta}[/{colour}]"
        table.add_row(
            d.dimension,
            fmt(t.mean_a),
            fmt(t.mean_b),
            delta,
            fmt(t.p_value, 3),
            fmt(d.p_holm, 3),
            str(d.cases),
        )
    console.print(table)
    console.print(
        "Δ = B - A over notebooks paired by case (cases resampled); green/red: Holm p < "
        f"{cmp.alpha:g} in favour of {cmp.version_b}/{cmp.version_a}",
        style="dim",
        highlight=False,
    )
    better = [o for o in cmp.outcomes if o.direction == "better"]
    worse = [o for o in cmp.outcomes if o.direction == "worse"]
    if better:
        console.print(
            f"[green]better[/green] in {cmp.version_b}: "
            + ", ".join(f"{o.case} ({o.improvement:+.2f})" for o in better),
            highlight=False,
        )
    if worse:
        console.print(
            f"[red]worse[/red] in {cmp.version_b}: "
            + ", ".join(f"{o.case} ({o.improvement:+.2f})" for o in worse),
            highlight=False,
        )
    for f in cmp.failures_fixed:
        console.print(f"fixed failure: {escape(f.case)} ({escape(short(f.reason))})")
    for f in cmp.failures_new:
        console.print(f"[red]new failure[/red]: {escape(f.case)} ({escape(short(f.reason))})")
    for note in cmp.notes:
        console.print(f"note: {escape(note)}", style="dim")
