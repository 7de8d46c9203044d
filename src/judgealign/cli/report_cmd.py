"""``judgealign report``: re-render or log a finished run without recomputing anything."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from judgealign.cli.common import one_line_errors
from judgealign.cli.mlflow_options import ExperimentOption, TrackingUriOption, mlflow_run_line
from judgealign.errors import ConfigError, DataError


@one_line_errors
def report(
    run: Annotated[Path, typer.Argument(help="A run folder (with report.json) or a report.json.")],
    fmt: Annotated[
        str, typer.Option("--format", help="console, markdown or html (markdown/html to stdout).")
    ] = "console",
    write: Annotated[
        bool, typer.Option(help="Regenerate report.html and report.md in the run folder.")
    ] = False,
    mlflow: Annotated[
        bool, typer.Option(help="Log the run to MLflow (again: its run is updated).")
    ] = False,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
) -> None:
    """Show a saved evaluation report; optionally rewrite its files or log it to MLflow."""
    from judgealign.report.model import EvaluationReport

    path = run / "report.json" if run.is_dir() else run
    if not path.is_file():
        raise DataError(f"{path}: no report here; run `judgealign evaluate --out {run}` first")
    rep = EvaluationReport.load(path)
    run_dir = path.parent
    if fmt == "console":
        from judgealign.report.console import render_console

        render_console(rep, Console())
    elif fmt == "markdown":
        from judgealign.report.markdown import render_markdown

        typer.echo(render_markdown(rep), nl=False)
    elif fmt == "html":
        from judgealign.report.html import render_html

        typer.echo(render_html(rep), nl=False)
    else:
        raise ConfigError(f"--format {fmt!r}: choose console, markdown or html")
    if write:
        from judgealign.report.html import write_html
        from judgealign.report.markdown import write_markdown

        write_html(rep, run_dir / "report.html")
        write_markdown(rep, run_dir / "report.md")
        typer.echo(f"wrote {run_dir / 'report.html'} and {run_dir / 'report.md'}", err=True)
    if mlflow:
        from judgealign.data.mlflow_store import resolve_tracking_uri
        from judgealign.integrations.mlflow.logging import log_report

        uri = resolve_tracking_uri(tracking_uri, run_dir)
        name = rep.config.name or run_dir.name
        logged = log_report(rep, run_dir, tracking_uri=uri, experiment=experiment, run_name=name)
        typer.echo(mlflow_run_line(logged), err=True)
