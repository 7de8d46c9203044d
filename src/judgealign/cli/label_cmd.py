"""``judgealign label``: an expert labels items in a browser; labels go to a labels file."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from judgealign.cli.common import err_console, load_items_and_refs, one_line_errors
from judgealign.labelling.server import LabellingServer
from judgealign.labelling.session import LabellingSession, read_judgements
from judgealign.rubric import load_rubric


def open_session(
    paths: list[Path],
    rubric: str,
    labels: Path,
    *,
    rater: str,
    dimensions: list[str] | None,
    judgements: Path | None,
) -> LabellingSession:
    """Load everything the page needs; raises one-line errors before any server starts."""
    full = load_rubric(rubric)
    shown = full.subset(list(dimensions)) if dimensions else full
    items = load_items_and_refs(paths)
    judged = read_judgements(judgements) if judgements is not None else []
    return LabellingSession(
        items, shown, labels, rater=rater, judgements=judged, file_rubric=full
    ).load()


def open_browser(url: str) -> None:
    """Open ``url`` in the default browser; a headless machine just gets the hint."""
    try:
        opened = webbrowser.open(url)
    except Exception:  # no browser, no display, a broken BROWSER setting: the URL suffices
        opened = False
    if not opened:
        err_console.print(f"could not open a browser; open {url} yourself", highlight=False)


def serve_until_interrupted(server: LabellingServer) -> None:
    """Block until Ctrl-C (tests replace this)."""
    server.block_until_interrupted()


@one_line_errors
def label(
    paths: Annotated[list[Path], typer.Argument(help="Notebooks, folders, .jsonl/.txt items.")],
    rubric: Annotated[str, typer.Option(help="Built-in rubric name or YAML.")],
    labels: Annotated[
        Path,
        typer.Option(help="Labels file (.jsonl or .csv); created if missing, others' rows kept."),
    ],
    rater: Annotated[str, typer.Option(help="Your name, stored on every label.")] = "expert",
    dimension: Annotated[list[str] | None, typer.Option(help="Only these dimensions.")] = None,
    judgements: Annotated[
        Path | None,
        typer.Option(help="Judgements JSONL from `judgealign score --out` to compare with."),
    ] = None,
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1; 0 picks a free one.")] = 0,
    browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a browser.")
    ] = True,
) -> None:
    """Label items in a browser; every Save rewrites --labels atomically.

    Example: judgealign label notebooks/ --rubric ml-notebook --labels labels.jsonl --rater ann
    """
    session = open_session(
        paths, rubric, labels, rater=rater, dimensions=dimension, judgements=judgements
    )
    before = len(session.labels)
    server = LabellingServer(session, port=port).start()
    try:
        typer.echo(
            f"labelling {len(session.items)} items on {len(session.rubric.dimensions)} "
            f"dimensions as {session.rater!r} ({before} labelled) at {server.url} "
            "(Ctrl-C to stop)"
        )
        if browser:
            open_browser(server.url)
        serve_until_interrupted(server)
    finally:
        server.close()
    typer.echo(
        f"saved {session.saved_count} label(s) this session; {len(session.labels)} of "
        f"{len(session.items) * len(session.rubric.dimensions)} labelled in {labels}"
    )
