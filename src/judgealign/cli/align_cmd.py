"""``judgealign align`` and ``judgealign memory``: build, inspect and edit an aligned judge."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from judgealign.cli.common import (
    BaseRatesOption,
    BlendOption,
    ContextRatioOption,
    ExpectedScoreOption,
    RecalibrateOption,
    ScoreFirstOption,
    check_score_maps,
    labels_for_items,
    load_items_and_refs,
    one_line_errors,
)
from judgealign.errors import DataError
from judgealign.judge.judge import Judge
from judgealign.judge.params import JudgeParams
from judgealign.judge.persistence import load_judge, save_judge
from judgealign.memory.base_rates import describe_base_rates
from judgealign.rubric import load_rubric

memory_app = typer.Typer(help="Inspect or edit an aligned judge's memory.", no_args_is_help=True)


def _default_items(labels: Path) -> list[Path]:
    # Labels usually sit next to the notebooks they grade.
    return [labels.parent]


@one_line_errors
def align(
    rubric: Annotated[str, typer.Option(help="Built-in rubric name or YAML.")],
    labels: Annotated[Path, typer.Option(help="Expert labels (.jsonl or .csv).")],
    out: Annotated[Path, typer.Option(help="Where to write the judge file.")],
    items: Annotated[
        list[Path] | None, typer.Option(help="Items the labels refer to (default: labels' folder).")
    ] = None,
    model: Annotated[str, typer.Option(help="Judge model, provider:model.")] = "fake:constant",
    reflection_model: Annotated[
        str | None, typer.Option(help="Model that distils guidelines (default: --model).")
    ] = None,
    embedder: Annotated[str, typer.Option(help="Embedder, e.g. fake, local, openai:...")] = "fake",
    dimension: Annotated[list[str] | None, typer.Option(help="Only these dimensions.")] = None,
    max_guidelines: Annotated[int, typer.Option(help="Guidelines kept per dimension.")] = 12,
    calibrate: Annotated[
        bool, typer.Option(help="Run the unaligned judge on training items; prefer its misses.")
    ] = False,
    k: Annotated[int, typer.Option(help="Expert-scored examples shown per judgement.")] = 3,
    context_ratio: ContextRatioOption = None,
    expected_score: ExpectedScoreOption = False,
    score_first: ScoreFirstOption = False,
    blend: BlendOption = False,
    recalibrate: RecalibrateOption = False,
    base_rates: BaseRatesOption = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Response cache folder.")] = Path(
        ".judgealign-cache"
    ),
    concurrency: Annotated[int, typer.Option(help="Parallel model calls.")] = 4,
) -> None:
    """Fit a judge on expert labels; refitting an existing --out only distils new labels."""
    check_score_maps(blend, recalibrate)
    full = load_rubric(rubric)
    rub = full.subset(list(dimension)) if dimension else full
    loaded_items = load_items_and_refs(items or _default_items(labels))
    lbs = labels_for_items(labels, full, loaded_items, rub.dimension_ids)
    if not lbs:
        raise DataError(f"{labels}: no label matches the given items and rubric dimensions")
    if out.exists():
        judge = load_judge(
            out,
            cache_dir=cache_dir,
            concurrency=concurrency,
            model=model,
            embedder=embedder,
            reflection_model=reflection_model,
        )
    else:
        params = JudgeParams(
            model=model,
            reflection_model=reflection_model,
            embedder=embedder,
            max_guidelines=max_guidelines,
            calibrate=calibrate,
            k=k,
            context_ratio=context_ratio,
            use_expected_score=expected_score,
            score_first=score_first,
            blend=blend,
            recalibrate=recalibrate,
            base_rates=base_rates,
        )
        judge = Judge(rub, params, cache_dir=cache_dir, concurrency=concurrency)
    judge.fit(lbs, loaded_items)
    save_judge(judge, out)
    usage = judge.usage()
    Console().print(
        f"aligned on {len(lbs)} labels -> {out} "
        f"({usage.calls} model calls, {usage.cached_calls} cached)"
    )
    _show(judge, None)


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _show(judge: Judge, dimension: str | None) -> None:
    memory = judge.memory_
    console = Console()
    if memory is None:
        console.print("this judge is not aligned (no memory): it scores zero-shot")
        return
    table = Table(title=f"memory of {judge.rubric.id} judge ({judge.params.model})")
    cols = ("dimension", "episodes", "items", "raters", "guidelines", "disagreements", "failed")
    for col in cols:
        table.add_column(col, justify="left" if col == "dimension" else "right")
    summary = memory.summary()
    dims = [dimension] if dimension else list(judge.rubric.dimension_ids)
    empty = {"episodes": 0, "items": 0, "raters": 0, "guidelines": 0, "disagreements": 0}
    for d in dims:
        row = summary.get(d, {**empty, "failed_batches": 0})
        table.add_row(
            d,
            *(str(row[c]) for c in ("episodes", "items", "raters", "guidelines", "disagreements")),
            str(row["failed_batches"]),
        )
    console.print(table)
    console.print(f"embedder: {memory.embedder or '—'}", style="dim", highlight=False)
    for d, b in memory.blends().items():
        if dimension in (None, d):
            console.print(
                f"score blend {escape(d)}: judge {b.judge:.2f}, {b.k} nearest examples "
                f"{b.neighbours:.2f}, median {b.center:g} {b.median:.2f}  [dim](training MAE "
                f"{b.mae:.3f}, held out {'-' if b.mae_heldout is None else f'{b.mae_heldout:.3f}'}"
                f"; judge alone {b.mae_judge:.3f}, examples {b.mae_neighbours:.3f}, "
                f"median {b.mae_median:.3f}; {b.n_labels} labels)[/dim]",
                highlight=False,
            )
    for d, by_variant in memory.calibrations().items():
        for variant, c in by_variant.items():
            if dimension not in (None, d):
                continue
            console.print(
                f"score calibration {escape(d)}/{variant}: "
                + (
                    f"{c.intercept:+.2f} {c.slope:+.2f} x judge"
                    if c.applied
                    else "not applied (the raw score did as well on held-out groups)"
                )
                + f"  [dim](training MAE raw {_f(c.mae_raw)}, calibrated {_f(c.mae)}, held out "
                f"{_f(c.mae_heldout)}; {c.n_labels} labels)[/dim]",
                highlight=False,
            )
    for d in dims:
        guidelines = memory.guidelines(d)
        rates = ""
        if judge.params.base_rates:
            rates = describe_base_rates(memory.episodes(d), judge.rubric.dimension(d).scale)
        if not guidelines and not rates:
            continue
        console.print(f"\n[bold]{escape(d)}[/bold]")
        if rates:
            console.print(f"  base rates: {escape(rates)}", highlight=False)
        for g in guidelines:
            more = " ..." if g.support > 4 else ""
            console.print(
                f"  - {escape(g.text)}  [dim]({g.support} labels: "
                f"{escape(', '.join(g.sources[:4]))}{more})[/dim]",
                highlight=False,
            )
    failures = [f for f in memory.failures() if dimension is None or f.dimension == dimension]
    for f in failures:
        console.print(
            f"[yellow]failed reflection batch[/yellow] {escape(f.dimension)} "
            f"({len(f.labels)} labels): {escape(f.error)} "
            "(kept as episodes; no guideline drawn from them)",
            highlight=False,
        )


@memory_app.command("show")
@one_line_errors
def memory_show(
    judge_file: Annotated[Path, typer.Argument(help="A judge file from `align`.")],
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
    model: Annotated[str | None, typer.Option(help="Reflection model for re-distillation.")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Response cache folder.")] = Path(
        ".judgealign-cache"
    ),
) -> None:
    """Remove labels, their episodes, and re-distil every guideline that drew on them."""
    overrides = {"model": model} if model else {}
    judge = load_judge(judge_file, cache_dir=cache_dir, **overrides)
    judge.forget(label)
    save_judge(judge, judge_file)
    Console().print(f"forgot {len(label)} label(s); {judge_file} updated")
    _show(judge, None)
