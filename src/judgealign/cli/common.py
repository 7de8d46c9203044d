"""Shared CLI plumbing: one-line errors, progress bars, loading items with their labels."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import ConfigError, DataError, JudgeAlignError
from judgealign.rubric.model import Rubric

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True)

# Judge options that `align` and `evaluate` share (same flag, same help, same meaning).
ContextRatioOption = Annotated[
    float | None,
    typer.Option(help="Memory context at most this fraction of the zero-shot prompt."),
]
ExpectedScoreOption = Annotated[
    bool, typer.Option(help="Score = probability-weighted mean (backends with logprobs).")
]
ScoreFirstOption = Annotated[
    bool, typer.Option(help="Ask for the score before the rationale (small/fast judges).")
]
BlendOption = Annotated[
    bool,
    typer.Option(
        help="Blend the judge's score with its nearest examples' expert scores and the "
        "median; weights fitted on the labels (runs the unaligned judge on them)."
    ),
]

BaseRatesOption = Annotated[
    bool,
    typer.Option(
        help="Tell the aligned judge how the experts spread their scores on each dimension "
        "(and, with --calibrate, which way the unaligned judge missed); no extra call."
    ),
]
RecalibrateOption = Annotated[
    bool,
    typer.Option(
        help="Map the aligned judge's score onto the experts' (affine, fitted on its own "
        "scores of the labelled items with their group left out: one call per label)."
    ),
]


def check_score_maps(blend: bool, recalibrate: bool) -> None:
    """ConfigError when both score maps are asked for (each remaps the judge's score)."""
    if blend and recalibrate:
        raise ConfigError("choose one of --blend and --recalibrate; both remap the judge's score")


def one_line_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a JudgeAlignError as one line on stderr and exit 1, without a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except JudgeAlignError as exc:
            err_console.print(
                f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print(
                "interrupted: finished work is saved; run the same command again to resume"
            )
            raise typer.Exit(130) from None

    return wrapper


class RichProgress:
    """A rich progress bar per phase (implements evaluation.runner.Progress)."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or err_console,
            transient=False,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def start(self, phase: str, total: int) -> None:
        self._task = self._progress.add_task(phase, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def status(self, text: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=text)


def ratings_or_items(
    rubric_name: str | None,
    items_paths: Sequence[Path],
    labels_path: Path | None,
    ratings: Path | None,
    limit: int | None,
    seed: int,
    dimensions: Sequence[str] | None,
    per_group: int | None = None,
) -> tuple[Rubric, list[Item], list[Label], list[Label]]:
    """Load (rubric, items, labels, rater_labels) from a ratings file or items + labels."""
    from judgealign.rubric import load_rubric

    if ratings is not None:
        from judgealign.data.ratings import load_ratings, rubric_for_ratings

        ds = load_ratings(
            ratings,
            limit=limit,
            dimensions=list(dimensions) if dimensions else None,
            seed=seed,
            per_group=per_group,
        )
        rubric = load_rubric(rubric_name) if rubric_name else rubric_for_ratings(ds, ratings)
        if dimensions:
            rubric = rubric.subset(list(dimensions))
        return rubric, list(ds.items), list(ds.labels), list(ds.rater_labels)
    if rubric_name is None:
        raise DataError("give --rubric (a built-in name or a YAML file), or --ratings FILE.jsonl")
    full = load_rubric(rubric_name)
    rubric = full.subset(list(dimensions)) if dimensions else full
    if not items_paths:
        raise DataError("give the items to judge (notebooks, folders or a .jsonl of texts)")
    items = load_items_and_refs(items_paths)
    labels: list[Label] = []
    if labels_path is not None:
        labels = labels_for_items(labels_path, full, items, rubric.dimension_ids)
    if limit is not None:
        items = items[:limit]
        keep = {it.id for it in items}
        labels = [lb for lb in labels if lb.item in keep]
    return rubric, items, labels, []


def load_items_and_refs(paths: Sequence[Path]) -> list[Item]:
    from judgealign.data.items_io import load_items

    return load_items([str(p) for p in paths])


def labels_for_items(
    labels_path: Path,
    rubric: Rubric,
    items: Sequence[Item],
    dimensions: Sequence[str] | None = None,
) -> list[Label]:
    """Read labels and point each at its item's id (labels may name items by path).

    Labels are checked against the whole ``rubric`` and then kept for ``dimensions`` only, so
    a labels file covering every dimension still serves a run on some of them.
    """
    from judgealign.data.items_io import resolve_item_ref
    from judgealign.data.labels_io import read_labels

    raw = read_labels(labels_path, rubric)
    out: list[Label] = []
    for lb in raw:
        try:
            item = resolve_item_ref(lb.item, items)
        except DataError:
            # Labels for items not being judged are fine (e.g. scoring a subset).
            continue
        out.append(lb if item.id == lb.item else lb.model_copy(update={"item": item.id}))
    wanted = set(dimensions if dimensions is not None else rubric.dimension_ids)
    return [lb for lb in out if lb.dimension in wanted]


def fail(message: str) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def is_tty() -> bool:
    return sys.stderr.isatty()
