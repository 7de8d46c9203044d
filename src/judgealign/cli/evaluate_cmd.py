"""``judgealign evaluate``: cross-validated baseline vs aligned judges, with statistics."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from judgealign.cli.common import check_failures, one_line_errors, ratings_or_items
from judgealign.cli.mlflow_options import ExperimentOption, TrackingUriOption, mlflow_run_line
from judgealign.cli.options import (
    DEFAULT_CACHE,
    CacheDirOption,
    ConcurrencyOption,
    ContextRatioOption,
    EmbedderOption,
    EngineOption,
    ItemBudgetOption,
    JudgeOptions,
    KOption,
    MaxFailedOption,
    MaxGuidelinesOption,
    MaxTokensOption,
    ModelOption,
    ReflectionModelOption,
    RetryFailedOption,
    SimilarityFloorOption,
    SparkMasterOption,
)
from judgealign.data.mlflow_store import connect, resolve_tracking_uri
from judgealign.data.mlflow_traces import is_mlflow_ref
from judgealign.errors import ConfigError, DataError
from judgealign.integrations.mlflow.logging import log_report, write_inputs_record
from judgealign.judge.params import VARIANTS, Variant


def _variants(text: str) -> list[Variant]:
    out: list[Variant] = []
    for v in (p.strip() for p in text.split(",") if p.strip()):
        if v not in VARIANTS:
            raise ConfigError(f"--variants: unknown {v!r}; choose from {', '.join(VARIANTS)}")
        out.append(v)  # type: ignore[arg-type]
    return out


def _sizes(text: str | None) -> list[int]:
    if not text:
        return []
    if not re.fullmatch(r"\s*\d+(\s*,\s*\d+)*\s*", text):
        raise ConfigError(f"--learning-curve {text!r}: give label counts like 5,10,20")
    return [int(x) for x in text.split(",")]


@one_line_errors
def evaluate(
    out: Annotated[Path, typer.Option(help="Run folder (report.json, report.html; resumable).")],
    rubric: Annotated[str | None, typer.Option(help="Built-in rubric name or YAML.")] = None,
    items: Annotated[
        list[Path] | None, typer.Option(help="Items (notebooks, folders, .jsonl).")
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            help="Expert labels (.jsonl or .csv), or MLflow traces with expert feedback: "
            "mlflow:experiment=NAME[&filter=...][&map=ASSESSMENT:DIMENSION]"
        ),
    ] = None,
    ratings: Annotated[
        Path | None, typer.Option(help="A normalized ratings file (items + labels in one).")
    ] = None,
    model: ModelOption = None,
    reflection_model: ReflectionModelOption = None,
    embedder: EmbedderOption = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds (grouped).")] = 4,
    variants: Annotated[str, typer.Option(help="Comma list of baseline,semantic,episodic,full")] = (
        "baseline,semantic,episodic,full"
    ),
    dimension: Annotated[list[str] | None, typer.Option(help="Only these dimensions.")] = None,
    limit: Annotated[int | None, typer.Option(help="Use about this many items.")] = None,
    per_group: Annotated[
        int | None,
        typer.Option(help="--ratings: at most this many items per group (spreads --limit)."),
    ] = None,
    learning_curve: Annotated[
        str | None, typer.Option(help="Label counts per dimension, e.g. 5,10,20.")
    ] = None,
    k: KOption = None,
    max_guidelines: MaxGuidelinesOption = None,
    context_ratio: ContextRatioOption = None,
    similarity_floor: SimilarityFloorOption = None,
    item_budget: ItemBudgetOption = None,
    max_tokens: MaxTokensOption = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 10_000,
    ci: Annotated[str, typer.Option(help="CI method: bca or percentile.")] = "bca",
    reference_draws: Annotated[
        int | None,
        typer.Option(help="Reference study's scheme: draws per resample (anti-conservative)."),
    ] = None,
    bootstrap: Annotated[
        str,
        typer.Option(
            help="What CIs and paired tests resample: auto (whole input groups when items "
            "share one, else items), item or cluster."
        ),
    ] = "auto",
    repeats: Annotated[
        int,
        typer.Option(
            min=1,
            help="Repeat the grouped CV with R fold seeds (seed, seed+1, ...): shows each "
            "variant's MAE spread across repeats and puts that alignment variance into the "
            "paired tests. Costs ~R x the alignment and aligned scoring (the baseline is judged "
            "once); resumable, and a rerun with a larger R computes only the new repeats.",
        ),
    ] = 1,
    seed: Annotated[int, typer.Option(help="Seed for folds, bootstrap and sampling.")] = 0,
    concurrency: ConcurrencyOption = 4,
    max_failed: MaxFailedOption = 0.5,
    retry_failed: RetryFailedOption = False,
    cache_dir: CacheDirOption = DEFAULT_CACHE,
    mlflow: Annotated[bool, typer.Option(help="Log the run to MLflow.")] = False,
    tracking_uri: TrackingUriOption = None,
    experiment: ExperimentOption = None,
    engine: EngineOption = "local",
    spark_master: SparkMasterOption = None,
) -> None:
    """Grouped k-fold evaluation of baseline and aligned variants; writes the reports."""
    from judgealign.evaluation.experiment import evaluate as run_evaluation

    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; name a run folder (new, or one to resume)")
    chosen = _variants(variants)
    rub, its, lbs, rater_lbs = ratings_or_items(
        rubric, items or [], labels, ratings, limit, seed, dimension, per_group, tracking_uri
    )
    if mlflow:
        # Fail on an unreachable or file:// store now, not after the whole evaluation.
        mlflow_uri = resolve_tracking_uri(tracking_uri, out)
        connect(mlflow_uri)
    # Where the data came from, for the run's MLflow datasets (a later `report --mlflow` too).
    given = [ratings] if ratings is not None else list(items or [])
    label_source = labels
    if labels is not None and not is_mlflow_ref(labels):
        label_source = str(Path(labels).resolve())
    sources = [str(p.resolve()) for p in given] or [str(label_source)]
    write_inputs_record(out, items=sources, labels=label_source)
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
    judge = opts.new_judge(rub, needs_embedder=any(v != "baseline" for v in chosen))
    if engine == "spark":  # each fold a Spark task; the report is built here as below
        from judgealign.integrations.spark import evaluate_on_spark
        from judgealign.integrations.spark.session import session_for

        run_evaluation = functools.partial(
            evaluate_on_spark, session_for(spark_master), cache_dir=cache_dir
        )
    report = run_evaluation(
        judge,
        its,
        lbs,
        variants=chosen,
        folds=folds,
        seed=seed,
        run_dir=out,
        concurrency=concurrency,
        learning_curve=_sizes(learning_curve),
        rater_labels=rater_lbs,
        n_resamples=resamples,
        ci_method=ci,
        draw_size=reference_draws,
        bootstrap=bootstrap,  # type: ignore[arg-type]
        repeats=repeats,
        retry_failed=retry_failed,
        name=out.name,
    )
    from judgealign.report.console import render_console

    console = Console()
    render_console(report, console)
    console.print(f"report: {out / 'report.html'}  (data: {out / 'report.json'})")
    if mlflow:
        run = log_report(
            report, out, tracking_uri=mlflow_uri, experiment=experiment, run_name=out.name
        )
        console.print(mlflow_run_line(run), highlight=False)
    check_failures((r.judgement for r in report.judgements), max_failed)
