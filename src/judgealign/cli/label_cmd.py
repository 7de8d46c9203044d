"""``judgealign label``: experts label items in a browser; labels go to a labels file."""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from judgealign.cli.common import err_console, load_items_and_refs, one_line_errors
from judgealign.errors import DataError
from judgealign.labelling.judges import JudgeSource, read_judge_file
from judgealign.labelling.server import LabellingServer, is_loopback
from judgealign.labelling.session import LabellingSession
from judgealign.labelling.store import adjudicated_path_for
from judgealign.labelling.tokens import rater_tokens
from judgealign.rubric import load_rubric


def open_session(
    paths: list[Path],
    rubric: str | None,
    labels: Path,
    *,
    rater: str | list[str],
    dimensions: list[str] | None,
    judgements: Path | list[Path] | None,
    ratings: Path | None = None,
    limit: int | None = None,
    seed: int = 0,
    per_group: int | None = None,
) -> LabellingSession:
    """Load everything the page needs; raises one-line errors before any server starts."""
    if ratings is not None:
        from judgealign.data.ratings import load_ratings, rubric_for_ratings

        if paths:
            raise DataError("give either items or --ratings, not both")
        ds = load_ratings(ratings, limit=limit, seed=seed, per_group=per_group)
        full = load_rubric(rubric) if rubric else rubric_for_ratings(ds, ratings)
        items = list(ds.items)
    else:
        if rubric is None:
            raise DataError("give --rubric (a built-in name or a YAML file), or --ratings FILE")
        if not paths:
            raise DataError("give the items to label (notebooks, folders or a .jsonl of texts)")
        full = load_rubric(rubric)
        items = load_items_and_refs(paths)
        if limit is not None:
            items = items[:limit]
    shown = full.subset(list(dimensions)) if dimensions else full
    raters = [rater] if isinstance(rater, str) else list(rater) or ["expert"]
    files = [judgements] if isinstance(judgements, Path) else list(judgements or [])
    sources: list[JudgeSource] = [s for path in files for s in read_judge_file(path)]
    return LabellingSession(
        items,
        shown,
        labels,
        rater=raters[0],
        raters=raters,
        judge_sources=sources,
        file_rubric=full,
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
    labels: Annotated[
        Path,
        typer.Option(help="Labels file (.jsonl or .csv); created if missing, others' rows kept."),
    ],
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Notebooks, folders, .jsonl/.txt items.")
    ] = None,
    rubric: Annotated[
        str | None, typer.Option(help="Built-in rubric name or YAML (generated for --ratings).")
    ] = None,
    ratings: Annotated[
        Path | None,
        typer.Option(help="Label the items of a normalized ratings file instead of PATHS."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many items.")] = None,
    seed: Annotated[int, typer.Option(help="--ratings --limit: which groups to keep.")] = 0,
    per_group: Annotated[
        int | None, typer.Option(help="--ratings: at most this many items per group.")
    ] = None,
    rater: Annotated[
        list[str] | None,
        typer.Option(help="Who labels (repeat for several raters, each gets a token link)."),
    ] = None,
    dimension: Annotated[list[str] | None, typer.Option(help="Only these dimensions.")] = None,
    judgements: Annotated[
        list[Path] | None,
        typer.Option(
            help="Judgements from `score --out` or an evaluate run folder (repeat: the last "
            "is shown; several judges or score probabilities order by uncertainty)."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; beyond 127.0.0.1 every rater needs a token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 0,
    tokens: Annotated[
        Path | None,
        typer.Option(help="JSON {rater: token}; created (mode 0600) with new tokens if missing."),
    ] = None,
    browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a browser.")
    ] = True,
) -> None:
    """Label items in a browser; every Save is stored at once and --labels rewritten.

    Several raters may label at once, in one server (--rater ann --rater bob: one link each)
    or in several `label` processes on one --labels file; nothing is lost either way.

    Example: judgealign label notebooks/ --rubric ml-notebook --labels labels.jsonl --rater ann
    """
    raters = list(rater or [])
    session = open_session(
        list(paths or []),
        rubric,
        labels,
        rater=raters or ["expert"],
        dimensions=dimension,
        judgements=judgements,
        ratings=ratings,
        limit=limit,
        seed=seed,
        per_group=per_group,
    )
    need_tokens = tokens is not None or len(raters) > 1 or not is_loopback(host)
    granted = rater_tokens(session.raters or [session.rater], tokens) if need_tokens else {}
    if granted:
        session.raters = sorted(set(granted.values()))
    before = {r: len(session.labels_of(r)) for r in session.raters or [session.rater]}
    server = LabellingServer(session, host=host, port=port, tokens=granted).start()
    try:
        who = ", ".join(f"{r!r} ({n} labelled)" for r, n in before.items())
        typer.echo(
            f"labelling {len(session.items)} items on {len(session.rubric.dimensions)} "
            f"dimensions as {who} at {server.url} (Ctrl-C to stop)"
        )
        for name in sorted(set(granted.values())):
            typer.echo(f"  {name}: {server.url_for(name)}")
        if granted and tokens is None:
            typer.echo("  (these tokens last until Ctrl-C; --tokens FILE keeps them)")
        if browser:
            open_browser(server.url_for(session.rater) if granted else server.url)
        serve_until_interrupted(server)
    finally:
        server.close()
    try:
        total = len(session.items) * len(session.rubric.dimensions)
        done = ", ".join(f"{r} {len(session.labels_of(r))}/{total}" for r in before)
        adjudicated = adjudicated_path_for(labels)
        typer.echo(
            f"saved {session.saved_count} label(s) this session; labelled: {done}; in {labels}"
            + (f" (adjudicated: {adjudicated})" if adjudicated.exists() else "")
        )
    finally:
        session.close()
