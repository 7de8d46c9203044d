"""Shared CLI plumbing: one-line errors, loading items with their labels."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import ConfigError, DataError, JudgeAlignError
from judgealign.judge.failures import FailureSummary
from judgealign.judge.judgement import Judgement
from judgealign.rubric.model import Rubric

P = ParamSpec("P")
R = TypeVar("R")

err_console = Console(stderr=True)


def one_line_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a JudgeAlignError as one line on stderr, without a traceback, and exit 2 for bad
    input or configuration (the user's to fix), 1 for anything else (a run that failed)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except JudgeAlignError as exc:
            err_console.print(
                f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            code = 2 if isinstance(exc, DataError | ConfigError) else 1
            raise typer.Exit(code) from None
        except KeyboardInterrupt:
            err_console.print(
                "interrupted: finished work is saved; run the same command again to resume"
            )
            raise typer.Exit(130) from None

    return wrapper


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
        from judgealign.data.loading import load_labels

        labels = load_labels(labels_path, full, items, dimensions=rubric.dimension_ids)
    if limit is not None:
        items = items[:limit]
        keep = {it.id for it in items}
        labels = [lb for lb in labels if lb.item in keep]
    return rubric, items, labels, []


def load_items_and_refs(paths: Sequence[Path]) -> list[Item]:
    from judgealign.data.items_io import load_items

    return load_items([str(p) for p in paths])


def check_failures(judgements: Iterable[Judgement], max_failed: float) -> None:
    """Print how many judgements failed and why; exit 1 when too many did (a run that
    mostly failed must not pass for a result in CI)."""
    from judgealign.judge.failures import FailureSummary

    check_failure_summary(FailureSummary.of(judgements), max_failed)


def check_failure_summary(summary: FailureSummary, max_failed: float) -> None:
    """``check_failures`` for a summary counted elsewhere (a Spark run counts its table)."""
    if not summary.failed:
        return
    if summary.too_many(max_failed):
        fail(
            f"{summary.line()}; the results are not usable (threshold --max-failed {max_failed:g})"
        )
    err_console.print(f"[yellow]warning:[/yellow] {escape(summary.line())}", highlight=False)


def fail(message: str) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def is_tty() -> bool:
    return sys.stderr.isatty()
