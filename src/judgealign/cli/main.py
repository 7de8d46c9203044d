"""The ``judgealign`` command."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Align LLM judges with human experts.")


@app.callback()
def main() -> None:
    """judgealign: rubric judges aligned to expert labels."""
