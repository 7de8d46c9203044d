"""``judgealign plan``: labels needed for a target interval width or power, from a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from judgealign.cli.common import one_line_errors
from judgealign.errors import DataError


def _n(x: int | None) -> str:
    return "> 20,000 items" if x is None else f"{x:,}"


@one_line_errors
def plan(
    run: Annotated[Path, typer.Argument(help="A run folder (with report.json) or a report.json.")],
    width: Annotated[
        float | None,
        typer.Option(help="Target width of the MAE interval (default: a tenth of the scale)."),
    ] = None,
    change: Annotated[
        float | None,
        typer.Option(
            help="MAE change to detect against the baseline (default: a tenth of the scale)."
        ),
    ] = None,
    power: Annotated[float, typer.Option(help="Probability of detecting that change.")] = 0.8,
    alpha: Annotated[float, typer.Option(help="Level of the paired test.")] = 0.05,
    variant: Annotated[
        str | None, typer.Option(help="Judge whose MAE is planned (default: full, if run).")
    ] = None,
    dimension: Annotated[list[str] | None, typer.Option(help="Only these dimensions.")] = None,
    simulations: Annotated[
        int, typer.Option(min=100, help="Simulated evaluations per size tried.")
    ] = 2000,
    seed: Annotated[int | None, typer.Option(help="Seed (default: the run's).")] = None,
    write: Annotated[
        bool,
        typer.Option(help="Store this plan in the run's report (report.json, .html, .md)."),
    ] = False,
) -> None:
    """Plan how many labels reach a target precision or power, by simulation from a run.

    No model call: the run's own errors are resampled (whole input groups when its intervals
    resampled groups) at larger and smaller sizes.
    """
    from judgealign.evaluation.planning import plan_sample_size
    from judgealign.report.views import Report

    path = run / "report.json" if run.is_dir() else run
    if not path.is_file():
        raise DataError(f"{path}: no report here; run `judgealign evaluate --out {run}` first")
    report = Report.load(path)
    result = plan_sample_size(
        report,
        width=width,
        change=change,
        power=power,
        alpha=alpha,
        variant=variant,
        dimensions=dimension,
        simulations=simulations,
        seed=seed,
    )
    unit = "groups" if result.unit == "cluster" else "items"
    judged = result.dimensions[0].variant if result.dimensions else "aligned"
    table = Table(
        title=f"Labels needed for the {judged} judge, planned from {path.parent.name or path}",
        box=box.SIMPLE_HEAD,
        header_style="bold",
        pad_edge=False,
    )
    for col in (
        "Dimension",
        "Pilot",
        "Scored",
        "CI width",
        "Labels",
        "Power",
        "Labels",
    ):
        left = col == "Dimension"
        table.add_column(col, justify="left" if left else "right", no_wrap=True)
    for d in result.dimensions:
        tested = d.change is not None and d.power_now is not None
        table.add_row(
            d.dimension,
            f"{d.pilot_labels:,} ({d.pilot_groups:,})",
            f"{d.applicable_share:.0%}",
            f"{d.width_now:.2f} → {d.width:.2f}",
            _n(d.labels_for_width),
            f"{d.power_now:.0%} → {d.power:.0%}" if tested and d.power_now is not None else "—",
            _n(d.labels_for_power) if tested else "—",
        )
    console = Console()
    console.print(table)
    for why in result.skipped:
        console.print(f"no plan for {why}", highlight=False)
    targets = {
        f"Pilot: labels ({unit}); CI width now → target {d.width:.2f}"
        + (f"; power now → target to detect an MAE change of {d.change:.2f}" if d.change else "")
        for d in result.dimensions
    }
    drawn = "whole input groups with their items' errors" if unit == "groups" else "items"
    for line in sorted(targets):
        console.print(line, style="dim", highlight=False)
    console.print(
        f"Simulated {result.simulations:,} evaluations per size, drawing {drawn} from this run; "
        "labels count N/A items too. Assumes new items and judges like these, and plans for "
        "item sampling only.",
        style="dim",
        highlight=False,
    )
    if write:
        from judgealign.report.html import write_html
        from judgealign.report.markdown import write_markdown

        updated = report.model_copy(update={"plan": result})
        updated.save(path)
        write_html(updated, path.parent / "report.html")
        write_markdown(updated, path.parent / "report.md")
        console.print(f"wrote the plan into {path} and its HTML and Markdown reports")
