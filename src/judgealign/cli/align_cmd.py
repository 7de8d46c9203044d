"""``judgealign align`` and ``judgealign memory``: build, inspect and edit an aligned judge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from judgealign.cli.common import labels_from_traces, load_items_and_refs, one_line_errors
from judgealign.cli.mlflow_options import ExperimentOption, TrackingUriOption, mlflow_run_line
from judgealign.cli.options import (
    DEFAULT_CACHE,
    CacheDirOption,
    ConcurrencyOption,
    ContextRatioOption,
    EmbedderOption,
    ItemBudgetOption,
    JudgeOptions,
    KOption,
    MaxGuidelinesOption,
    MaxTokensOption,
    ModelOption,
    ReflectionModelOption,
    SeedOption,
    SimilarityFloorOption,
)
from judgealign.data.loading import load_labels
from judgealign.data.mlflow_store import connect, is_artifact_uri, resolve_tracking_uri
from judgealign.data.mlflow_traces import is_mlflow_ref
from judgealign.errors import DataError
from judgealign.judge.judge import Judge
from judgealign.judge.persistence import load_judge, save_judge
from judgealign.memory.store import AlignmentMemory
from judgealign.progress import progress_for
from judgealign.rubric import load_rubric

memory_app = typer.Typer(help="Inspect or edit an aligned judge's memory.", no_args_is_help=True)


def _default_items(labels: str) -> list[Path]:
    # Labels usually sit next to the notebooks they grade.
    return [Path(labels).parent]


@one_line_errors
def align(
    rubric: Annotated[str, typer.Option(help="Built-in rubric name or YAML.")],
    labels: Annotated[
        str,
        typer.Option(
            help="Expert labels (.jsonl or .csv), or MLflow traces with expert feedback: "
            "mlflow:experiment=NAME[&filter=...][&map=ASSESSMENT:DIMENSION]"
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the judge file.")],
    items: Annotated[
        list[Path] | None, typer.Option(help="Items the labels refer to (default: labels' folder).")
    ] = None,
    dimension: Annotated[list[str] | None, typer.Option(help="Only these dimensions.")] = None,
    model: ModelOption = None,
    reflection_model: ReflectionModelOption = None,
    embedder: EmbedderOption = None,
    k: KOption = None,
    max_guidelines: MaxGuidelinesOption = None,
    context_ratio: ContextRatioOption = None,
    similarity_floor: SimilarityFloorOption = None,
    item_budget: ItemBudgetOption = None,
    max_tokens: MaxTokensOption = None,
    seed: SeedOption = None,
    cache_dir: CacheDirOption = DEFAULT_CACHE,
    concurrency: ConcurrencyOption = 4,
    mlflow: Annotated[
        bool,
        typer.Option(help="Log the judge to MLflow (loadable as runs:/RUN_ID/judge.json)."),
    ] = False,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
) -> None:
    """Fit a judge on expert labels. Refitting an existing --out distils only new labels and
    applies the options given (the others keep the file's values)."""
    opts = JudgeOptions(
        model=model,
        reflection_model=reflection_model,
        embedder=embedder,
        k=k,
        max_guidelines=max_guidelines,
        context_ratio=context_ratio,
        similarity_floor=similarity_floor,
        item_budget=item_budget,
        max_tokens=max_tokens,
        seed=seed,
        cache_dir=cache_dir,
        concurrency=concurrency,
    )
    full = load_rubric(rubric)
    rub = full.subset(list(dimension)) if dimension else full
    if mlflow:
        # Fail on an unreachable or file:// store now, not after the alignment.
        mlflow_uri = resolve_tracking_uri(tracking_uri, out.resolve().parent)
        connect(mlflow_uri)
    if is_mlflow_ref(labels):
        if items:
            raise DataError("--items is not used with --labels mlflow:... (traces are the items)")
        loaded_items, lbs, _ = labels_from_traces(labels, full, rub, tracking_uri)
    else:
        loaded_items = load_items_and_refs(items or _default_items(labels))
        lbs = load_labels(labels, full, loaded_items, dimensions=rub.dimension_ids)
    if not lbs:
        raise DataError(f"{labels}: no label matches the given items and rubric dimensions")
    console = Console()
    if out.exists():
        judge = load_judge(out)
        missing = [d for d in rub.dimension_ids if d not in judge.rubric.dimension_ids]
        if dimension and missing:
            raise DataError(
                f"{out}: the judge file has no dimension {', '.join(missing)}; "
                "align it into a new --out"
            )
        # A refit without --dimension serves the file's own dimensions.
        lbs = [lb for lb in lbs if lb.dimension in judge.rubric.dimension_ids]
        if not lbs:
            raise DataError(f"{labels}: no label for the dimensions of {out}")
        changed = opts.apply(judge)
        console.print(
            f"refitting {out}: "
            + (f"applied {', '.join(changed)}" if changed else "same settings as the file"),
            highlight=False,
        )
    else:
        judge = opts.new_judge(rub)
    n_dims = len({lb.dimension for lb in lbs})
    with progress_for() as progress:
        progress.start(f"aligning {len(lbs)} labels", n_dims)
        judge.fit(lbs, loaded_items, on_dimension=lambda d: progress.advance())
    save_judge(judge, out)
    usage = judge.usage()
    console.print(
        f"aligned on {len(lbs)} labels -> {out} "
        f"({usage.calls} model calls, {usage.cached_calls} cached)"
    )
    _show(judge, None)
    if mlflow:
        from judgealign.integrations.mlflow.logging import log_alignment

        run = log_alignment(
            judge,
            out,
            lbs,
            loaded_items,
            tracking_uri=mlflow_uri,
            experiment=experiment,
            labels_source=labels if is_mlflow_ref(labels) else str(Path(labels).resolve()),
        )
        console.print(mlflow_run_line(run, artifact="judge.json"), highlight=False)


def _show(judge: Judge, dimension: str | None) -> None:
    memory = judge.memory_
    console = Console()
    if memory is None:
        console.print("this judge is not aligned (no memory): it scores zero-shot")
        return
    table = Table(title=f"memory of {judge.rubric.id} judge ({judge.params.model or 'local'})")
    cols = ("dimension", "episodes", "items", "raters", "guidelines", "failed")
    for col in cols:
        table.add_column(col, justify="left" if col == "dimension" else "right")
    summary = memory.summary()
    dims = [dimension] if dimension else list(judge.rubric.dimension_ids)
    empty = {"episodes": 0, "items": 0, "raters": 0, "guidelines": 0}
    for d in dims:
        row = summary.get(d, {**empty, "failed_batches": 0})
        table.add_row(
            d,
            *(str(row[c]) for c in ("episodes", "items", "raters", "guidelines")),
            str(row["failed_batches"]),
        )
    console.print(table)
    console.print(f"embedder: {memory.embedder or '—'}", style="dim", highlight=False)
    print_guidelines(memory, dims, console)
    failures = [f for f in memory.failures() if dimension is None or f.dimension == dimension]
    for f in failures:
        console.print(
            f"[yellow]failed reflection batch[/yellow] {escape(f.dimension)} "
            f"({len(f.labels)} labels): {escape(f.error)} "
            "(kept as episodes; no guideline drawn from them)",
            highlight=False,
        )


def print_guidelines(memory: AlignmentMemory, dims: Sequence[str], console: Console) -> None:
    """Each dimension's guidelines with their support (the labels behind each)."""
    for d in dims:
        guidelines = memory.guidelines(d)
        if not guidelines:
            continue
        console.print(f"\n[bold]{escape(d)}[/bold] guidelines (support: labels behind each)")
        for g in guidelines:
            more = " ..." if g.support > 4 else ""
            console.print(
                f"  - {escape(g.text)}  [dim]({g.support} labels: "
                f"{escape(', '.join(g.sources[:4]))}{more})[/dim]",
                highlight=False,
            )


@memory_app.command("show")
@one_line_errors
def memory_show(
    judge_file: Annotated[
        Path, typer.Argument(help="A judge file from `align`, or runs:/RUN_ID/judge.json.")
    ],
    dimension: Annotated[str | None, typer.Option(help="Only this dimension.")] = None,
) -> None:
    """List guidelines (with the labels behind them) and episode counts."""
    judge = load_judge(judge_file)
    if dimension:
        judge.rubric.dimension(dimension)
    _show(judge, dimension)


@memory_app.command("forget")
@one_line_errors
def memory_forget(
    judge_file: Annotated[Path, typer.Argument(help="A judge file from `align`.")],
    label: Annotated[list[str], typer.Option(help="Label id item::dimension::rater (repeat).")],
    model: Annotated[
        str | None, typer.Option(help="Reflection model for re-distillation (default: the file's).")
    ] = None,
    cache_dir: CacheDirOption = DEFAULT_CACHE,
) -> None:
    """Remove labels, their episodes, and re-distil every guideline that drew on them."""
    if is_artifact_uri(judge_file):
        raise DataError(
            f"{judge_file}: memory forget rewrites a local judge file; download it first "
            "(mlflow artifacts download -u URI) and forget in the copy"
        )
    judge = load_judge(judge_file)
    JudgeOptions(reflection_model=model, cache_dir=cache_dir).apply(judge)
    judge.forget(label)
    save_judge(judge, judge_file)
    Console().print(f"forgot {len(label)} label(s); {judge_file} updated")
    _show(judge, None)
