"""Console rendering: the headline table with rich, for `evaluate` and `demo`."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table

from judgealign.report.model import EvaluationReport
from judgealign.report.table import (
    COLUMNS,
    footer_lines,
    plan_lines,
    reference_lines,
    summary_rows,
)

# Dropped first when the terminal is narrow; the MAE columns are what the table is for (the
# reference levels then go under the table: a judge is never shown without them).
_OPTIONAL = ("Bias", "Median pred.", "Calib. base", "Human-human")
_WIDE = 130
# Below 100 columns these go too: both MAEs with their CIs and the p are what must stay whole
# (each row's n then heads its dimension's line under the table).
_NARROW = 100
_NARROW_OPTIONAL = ("n", "Change")


def console_table(
    report: EvaluationReport, reference: str = "baseline", width: int | None = None
) -> Table:
    """The per-dimension table: baseline vs aligned MAE with CIs, change and p-values.

    Below 130 columns of ``width`` the bias and reference columns are left out, below 100
    also n and the change (all are in the HTML and Markdown reports).

    >>> from rich.console import Console
    >>> Console().print(console_table(report))  # doctest: +SKIP
    """
    title = f"{report.config.rubric_id}: judge vs experts (MAE, lower is better)"
    table = Table(title=title, box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    dropped: tuple[str, ...] = ()
    if width is not None and width < _WIDE:
        dropped = _OPTIONAL + (_NARROW_OPTIONAL if width < _NARROW else ())
    keep = [i for i, col in enumerate(COLUMNS) if col not in dropped]
    for i in keep:
        col = COLUMNS[i]
        left = col in ("Dimension", "Variant")
        table.add_column(col, justify="left" if left else "right", no_wrap=left or "MAE" in col)
    previous_dim = ""
    for row in summary_rows(report, reference):
        if row.cells[0] and previous_dim:
            table.add_section()
        previous_dim = row.cells[0] or previous_dim
        style = ""
        if row.significant:
            style = "green" if row.better else "red"
        table.add_row(*(row.cells[i] for i in keep), style=style)
    return table


def render_console(report: EvaluationReport, console: Console | None = None) -> None:
    """Print the headline table and the run facts under it (with the reference levels when
    the console is too narrow for their columns).

    >>> render_console(EvaluationReport.load(Path("runs/demo/report.json")))  # doctest: +SKIP
    """
    console = console or Console()
    console.print(console_table(report, width=console.width))
    lines = footer_lines(report)
    if console.width < _WIDE:
        lines = reference_lines(report, paired_n=console.width < _NARROW) + lines
    for line in lines:
        style = "bold yellow" if line.startswith("WARNING") else "dim"
        console.print(line, style=style, highlight=False)
    for line in plan_lines(report):
        console.print(line, highlight=False, style="dim" if line.startswith(" ") else "")
