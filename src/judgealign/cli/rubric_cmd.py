"""``judgealign rubric``: show, validate and list rubrics.

Mounted by ``cli/main.py`` as ``app.add_typer(rubric_app, name="rubric")``::

    judgealign rubric list
    judgealign rubric show ml-notebook --dimension data_imputation
    judgealign rubric validate my-rubric.yaml
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import yaml
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from judgealign.errors import JudgeAlignError
from judgealign.rubric import Dimension, Rubric, builtin_rubrics, load_rubric, rubric_to_yaml

rubric_app = typer.Typer(
    help="Show, validate and list rubrics (built-in names or YAML files).",
    no_args_is_help=True,
)


class OutputFormat(StrEnum):
    """How ``rubric show`` prints a rubric."""

    text = "text"
    yaml = "yaml"
    json = "json"


def _fail(exc: JudgeAlignError) -> NoReturn:
    # Users cause these errors, so one readable line beats a traceback.
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


def _dimension_panel(dim: Dimension) -> Panel:
    scale = dim.scale
    table = Table(show_header=True, header_style="bold", expand=True, box=None)
    table.add_column("level", justify="right", no_wrap=True)
    table.add_column("anchor", ratio=1)
    # Wide scales anchor only a few levels; list the anchored ones, highest first.
    for level in sorted(scale.anchors, reverse=True):
        table.add_row(str(level), Text(scale.anchors[level]))
    if scale.na_value is not None:
        table.add_row(
            Text(f"{scale.na_value} (N/A)", style="dim"), Text(scale.na_description, style="dim")
        )
    parts: list[Text | Table] = [Text(dim.description)]
    if dim.guidance:
        parts.append(Text.assemble(("Guidance: ", "bold"), dim.guidance))
    parts.append(table)
    title = Text.assemble((dim.id, "bold cyan"), f"  {dim.name}  (scale {scale.min}-{scale.max})")
    return Panel(Group(*parts), title=title, title_align="left")


def _print_text(rubric: Rubric, dimensions: tuple[Dimension, ...]) -> None:
    console = Console(highlight=False)
    header = Text.assemble(
        (rubric.name, "bold"),
        f"  [{rubric.id}, {rubric.item_kind}, {len(rubric.dimensions)} dimensions]",
    )
    console.print(header)
    if rubric.description:
        console.print(Text(rubric.description))
    for dim in dimensions:
        console.print(_dimension_panel(dim))


@rubric_app.command("show")
def show(
    name_or_path: Annotated[
        str, typer.Argument(metavar="NAME_OR_PATH", help="Built-in rubric name or YAML path.")
    ],
    dimension: Annotated[
        str | None, typer.Option("--dimension", "-d", help="Show only this dimension id.")
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="text, yaml or json.")
    ] = OutputFormat.text,
) -> None:
    """Print a rubric: each dimension's description, anchors per level and N/A rule."""
    try:
        rubric = load_rubric(name_or_path)
        dims = (rubric.dimension(dimension),) if dimension is not None else rubric.dimensions
    except JudgeAlignError as exc:
        _fail(exc)
    if output_format is OutputFormat.text:
        _print_text(rubric, dims)
        return
    if dimension is not None:
        data = dims[0].model_dump(mode="json")
        rendered = (
            json.dumps(data, indent=2, ensure_ascii=False)
            if output_format is OutputFormat.json
            else yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        )
    elif output_format is OutputFormat.json:
        rendered = json.dumps(rubric.model_dump(mode="json"), indent=2, ensure_ascii=False)
    else:
        rendered = rubric_to_yaml(rubric)
    typer.echo(rendered.rstrip("\n"))


@rubric_app.command("validate")
def validate(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH...", help="Rubric YAML files.")],
) -> None:
    """Check rubric files; print ``ok`` per valid file, one error line per invalid one."""
    failed = False
    for path in paths:
        try:
            rubric = load_rubric(path)
        except JudgeAlignError as exc:
            typer.echo(f"error: {exc}", err=True)
            failed = True
            continue
        typer.echo(f"ok: {path} ({len(rubric.dimensions)} dimensions)")
    if failed:
        raise typer.Exit(code=1)


@rubric_app.command("list")
def list_builtin() -> None:
    """Print the names of the built-in rubrics, one per line."""
    for name in builtin_rubrics():
        typer.echo(name)
