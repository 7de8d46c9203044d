"""The ``judgealign`` command: thin wrappers over the library, one module per command."""

from __future__ import annotations

import typer

from judgealign import __version__
from judgealign.cli.agent_cmd import agent_app
from judgealign.cli.align_cmd import align, memory_app
from judgealign.cli.common import OneLineUsageErrors
from judgealign.cli.demo_cmd import demo
from judgealign.cli.evaluate_cmd import evaluate
from judgealign.cli.label_cmd import label
from judgealign.cli.plan_cmd import plan
from judgealign.cli.report_cmd import report
from judgealign.cli.rubric_cmd import rubric_app
from judgealign.cli.score_cmd import score
from judgealign.cli.serve_cmd import serve
from judgealign.cli.stress_cmd import stress

app = typer.Typer(
    cls=OneLineUsageErrors,
    no_args_is_help=True,
    help="Align LLM judges with human experts, and measure it honestly.",
    pretty_exceptions_show_locals=False,
)
app.command(help="Score items on a rubric (zero-shot, or with --judge from `align`).")(score)
app.command(help="Fit a judge's dual memory on expert labels.")(align)
app.command(help="Cross-validated baseline vs aligned evaluation with statistics.")(evaluate)
app.command(help="Show a saved run's report; rewrite it or log it to MLflow.")(report)
app.command(help="Labels needed for a target CI width or power, planned from a run.")(plan)
app.command(help="Run the offline demo: ML-notebook judges on the shipped demo set.")(demo)
app.command(help="Serve a model over an OpenAI-compatible API on 127.0.0.1.")(serve)
app.command(help="Label items in a browser (expert scores and justifications).")(label)
app.command(help="Plant known flaws in notebooks; measure whether each judge notices.")(stress)
app.add_typer(rubric_app, name="rubric")
app.add_typer(memory_app, name="memory")
app.add_typer(agent_app, name="agent")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"judgealign {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version."
    ),
) -> None:
    """judgealign: rubric judges aligned to expert labels."""
