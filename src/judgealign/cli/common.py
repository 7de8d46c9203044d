"""Shared CLI plumbing: one-line errors, loading items with their labels."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.data.mlflow_traces import is_mlflow_ref
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


# Click's exception base, whichever click typer runs on (recent typers vendor their own):
# BadParameter -> UsageError -> ClickException.
_CLICK_EXCEPTION: type[Exception] = typer.BadParameter.__mro__[2]


class OneLineUsageErrors(TyperGroup):
    """The command group whose usage errors (an unknown option, a value of the wrong type, a
    missing argument) are one line on stderr, exit code 2, like every other bad input: not
    the framed usage box, which a CI log or a script's caller reads as several errors."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except _CLICK_EXCEPTION as exc:
            status = int(getattr(exc, "exit_code", 2))
            if type(exc).__name__ == "NoArgsIsHelpError":
                sys.exit(status)  # the help has been printed
            ctx = getattr(exc, "ctx", None)
            hint = f"; see `{ctx.command_path} --help`" if ctx is not None else ""
            message = str(getattr(exc, "format_message", exc.__str__)()).rstrip(".")
            err_console.print(
                f"[red]error:[/red] {escape(message)}{escape(hint)}",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(status)
        except typer.Abort:
            err_console.print("aborted")
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def ratings_or_items(
    rubric_name: str | None,
    items_paths: Sequence[Path],
    labels_path: str | Path | None,
    ratings: Path | None,
    limit: int | None,
    seed: int,
    dimensions: Sequence[str] | None,
    per_group: int | None = None,
    tracking_uri: str | None = None,
) -> tuple[Rubric, list[Item], list[Label], list[Label]]:
    """Load (rubric, items, labels, rater_labels) from a ratings file, items + labels, or
    MLflow traces with expert feedback (``--labels mlflow:...``: the traces are the items)."""
    from judgealign.rubric import load_rubric

    if ratings is not None:
        from judgealign.data.ratings import load_ratings, rubric_for_ratings

        given = load_rubric(rubric_name) if rubric_name else None
        ds = load_ratings(
            ratings,
            limit=limit,
            dimensions=list(dimensions) if dimensions else None,
            seed=seed,
            per_group=per_group,
            rubric=given,
        )
        rubric = given or rubric_for_ratings(ds, ratings)
        if dimensions:
            rubric = rubric.subset(list(dimensions))
        return rubric, list(ds.items), list(ds.labels), list(ds.rater_labels)
    if rubric_name is None:
        raise DataError("give --rubric (a built-in name or a YAML file), or --ratings FILE.jsonl")
    full = load_rubric(rubric_name)
    rubric = full.subset(list(dimensions)) if dimensions else full
    if labels_path is not None and is_mlflow_ref(str(labels_path)):
        if items_paths:
            raise DataError("--items is not used with --labels mlflow:... (traces are the items)")
        traced, traced_labels, multi = labels_from_traces(
            str(labels_path), full, rubric, tracking_uri
        )
        # An experiment also holds unlabelled traffic: only labelled traces are evaluated.
        labelled = {lb.item for lb in traced_labels}
        traced = [it for it in traced if it.id in labelled]
        if limit is not None:
            traced = traced[:limit]
            kept = {it.id for it in traced}
            traced_labels = [lb for lb in traced_labels if lb.item in kept]
        # Several raters per trace: their labels also give the human-human reference line.
        return rubric, traced, traced_labels, traced_labels if multi else []
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


def labels_from_traces(
    ref: str, full: Rubric, rubric: Rubric, tracking_uri: str | None
) -> tuple[list[Item], list[Label], bool]:
    """Items, labels (of ``rubric``'s dimensions) and whether several raters labelled one
    trace, from an ``mlflow:`` reference; prints what was read and what was left out."""
    from judgealign.data.mlflow_traces import read_traces

    traces = read_traces(ref, full, tracking_uri=tracking_uri)
    err_console.print(escape(traces.summary()), highlight=False, soft_wrap=True)
    wanted = set(rubric.dimension_ids)
    labels = [lb for lb in traces.labels if lb.dimension in wanted]
    return traces.items, labels, traces.multi_rated


def load_items_and_refs(paths: Sequence[str | Path], tracking_uri: str | None = None) -> list[Item]:
    """Items from files and folders, and from ``mlflow:`` references (read from
    ``tracking_uri`` unless the reference names its own store)."""
    from judgealign.data.items_io import load_items
    from judgealign.data.mlflow_traces import read_traces

    given = [str(p) for p in paths]
    items = load_items([p for p in given if not is_mlflow_ref(p)])
    seen = {it.id for it in items}
    for ref in (p for p in given if is_mlflow_ref(p)):
        for item in read_traces(ref, None, tracking_uri=tracking_uri).items:
            if item.id not in seen:  # a trace named by two references is one item
                seen.add(item.id)
                items.append(item)
    return items


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
