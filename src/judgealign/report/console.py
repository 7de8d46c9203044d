"""Console rendering: the headline table with rich, for `evaluate` and `demo`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from judgealign.report.model import EvaluationReport
from judgealign.report.table import COLUMNS, footer_lines, summary_rows


def console_table(report: EvaluationReport, reference: str = "baseline") -> Table:
    """The per-dimension table: baseline vs aligned MAE with CIs, change and p-values.

    >>> from rich.console import Console
    >>> Console().print(console_table(report))  # doctest: +SKIP
    """
    title = f"{report.config.rubric_id}: judge vs experts (MAE, lower is better)"
    table = Table(title=title, show_lines=False, header_style="bold")
    for col in COLUMNS:
        table.add_column(col, justify="left" if col in ("Dimension", "Variant") else "right")
    previous_dim = ""
    for row in summary_rows(report, reference):
        if row.cells[0] and previous_dim:
            table.add_section()
        previous_dim = row.cells[0] or previous_dim
        style = ""
        if row.significant:
            style = "green" if row.better else "red"
        table.add_row(*row.cells, style=style)
    return table


def render_console(report: EvaluationReport, console: Console | None = None) -> None:
    """Print the headline table and the run facts under it.

    >>> render_console(EvaluationReport.load(Path("runs/demo/report.json")))  # doctest: +SKIP
    """
    console = console or Console()
    console.print(console_table(report))
    for line in footer_lines(report):
        style = "bold yellow" if line.startswith("WARNING") else "dim"
        console.print(line, style=style, highlight=False)
