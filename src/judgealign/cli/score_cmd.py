"""``judgealign score``: judge items on a rubric, with or without an aligned judge file."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from judgealign.cli.common import (
    check_failure_summary,
    check_failures,
    load_items_and_refs,
    one_line_errors,
)
from judgealign.cli.mlflow_options import ReadTrackingUriOption
from judgealign.cli.options import (
    DEFAULT_CACHE,
    CacheDirOption,
    ConcurrencyOption,
    EmbedderOption,
    EngineOption,
    ItemBudgetOption,
    JudgeOptions,
    MaxFailedOption,
    MaxTokensOption,
    ModelOption,
    RetryFailedOption,
    SparkMasterOption,
)
from judgealign.data.files import read_text
from judgealign.data.jsonl import repair_torn_tail
from judgealign.data.mlflow_store import resolve_tracking_uri
from judgealign.data.mlflow_traces import is_mlflow_ref
from judgealign.errors import DataError
from judgealign.judge.failures import FailureSummary, redo_on_resume
from judgealign.judge.judge import Judge
from judgealign.judge.judgement import Judgement
from judgealign.judge.persistence import load_judge
from judgealign.progress import progress_for
from judgealign.providers.types import Usage
from judgealign.rubric import load_rubric
from judgealign.sync import run_sync

OutFormatOption = Annotated[
    Literal["auto", "parquet", "delta"],
    typer.Option(
        help="Table format of --out for --engine spark (auto: Delta where the session has it)."
    ),
]


def _read_done(out: Path, retry_failed: bool) -> dict[tuple[str, str], Judgement]:
    """The judgements an earlier run stored in ``out`` (those a resume keeps).

    Every complete line must be a judgement: an --out naming another file (the labels, say)
    is refused before anything is appended to it or cut from it. An unfinished last line
    (no newline: a run killed mid-write) is left for ``repair_torn_tail``.
    """
    done: dict[tuple[str, str], Judgement] = {}
    if not out.exists():
        return done
    *complete, _torn = read_text(out).split("\n")
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            j = _judgement(json.loads(line))
        except (ValueError, RecursionError):
            raise DataError(
                f"{out}:{number}: not a judgement (a judgements file from `judgealign score` "
                "holds one per line); name a new --out, or delete that line"
            ) from None
        if not redo_on_resume(j, retry_failed):
            done[j.key] = j
    return done


def _judgement(data: object) -> Judgement:
    """A stored judgement; ValueError for anything else, such as a label (whose fields a
    judgement also has, but never with ``rater``, nor without ``schema_version`` and
    ``model``, which every judgement judgealign writes carries)."""
    if not isinstance(data, dict) or not {"schema_version", "model"} <= set(data):
        raise ValueError("not a judgement")
    if set(data) - set(Judgement.model_fields):
        raise ValueError("fields a judgement does not have")
    return Judgement.model_validate(data)


@one_line_errors
def score(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Notebooks, folders, .jsonl/.txt items, or MLflow traces: mlflow:experiment=NAME"
        ),
    ],
    rubric: Annotated[str | None, typer.Option(help="Built-in rubric name or YAML.")] = None,
    model: ModelOption = None,
    judge_file: Annotated[
        str | None,
        typer.Option("--judge", help="A judge file from `align`, or runs:/RUN_ID/judge.json."),
    ] = None,
    dimension: Annotated[list[str] | None, typer.Option(help="Only these dimensions.")] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Judgements JSONL (appended; reruns resume); with --engine spark a Parquet or "
            "Delta folder. Default: judgements.jsonl, or judgements/ with --engine spark."
        ),
    ] = None,
    embedder: EmbedderOption = None,
    cache_dir: CacheDirOption = DEFAULT_CACHE,
    concurrency: ConcurrencyOption = 4,
    item_budget: ItemBudgetOption = None,
    max_tokens: MaxTokensOption = None,
    max_failed: MaxFailedOption = 0.5,
    retry_failed: RetryFailedOption = False,
    mlflow_feedback: Annotated[
        bool,
        typer.Option(
            help="Write the verdicts on MLflow traces back to them as LLM_JUDGE feedback."
        ),
    ] = False,
    tracking_uri: ReadTrackingUriOption = None,
    engine: EngineOption = "local",
    spark_master: SparkMasterOption = None,
    out_format: OutFormatOption = "auto",
) -> None:
    """Score items on every (or the given) rubric dimension; prints a summary."""
    opts = JudgeOptions(
        model=model,
        embedder=embedder,
        item_budget=item_budget,
        max_tokens=max_tokens,
        cache_dir=cache_dir,
        concurrency=concurrency,
    )
    if judge_file is not None:
        judge = load_judge(judge_file, tracking_uri=tracking_uri)
        opts.apply(judge)
        if rubric is not None and load_rubric(rubric).id != judge.rubric.id:
            raise DataError(f"--rubric {rubric} differs from the judge file's {judge.rubric.id!r}")
    else:
        if rubric is None:
            raise DataError("give --rubric NAME (or --judge judge.json from `judgealign align`)")
        judge = opts.new_judge(load_rubric(rubric), needs_embedder=False)
    dims = list(dimension) if dimension else list(judge.rubric.dimension_ids)
    for d in dims:
        judge.rubric.dimension(d)
    if engine == "spark":
        if mlflow_feedback or any(is_mlflow_ref(p) for p in paths):
            raise DataError(
                "--engine spark reads Parquet, JSONL and notebook folders; score MLflow traces "
                "(and write --mlflow-feedback) with the default --engine local"
            )
        _score_on_spark(
            judge,
            [Path(p) for p in paths],
            dims,
            out or Path("judgements"),
            opts,
            retry_failed=retry_failed,
            max_failed=max_failed,
            master=spark_master,
            out_format=out_format,
        )
        return
    out = out or Path("judgements.jsonl")
    items = load_items_and_refs(paths, tracking_uri)
    if mlflow_feedback:
        traced = [it for it in items if it.metadata.get("mlflow_trace_id")]
        if not traced:
            raise DataError("--mlflow-feedback writes to traces: give mlflow:experiment=NAME items")
        feedback_uri = resolve_tracking_uri(tracking_uri)
    if out.is_dir():
        raise DataError(f"--out {out} is a folder; name a .jsonl file for the judgements")
    done = _read_done(out, retry_failed)
    repair_torn_tail(out)  # a killed run's unfinished record must not swallow the next
    out.parent.mkdir(parents=True, exist_ok=True)
    results: list[Judgement] = [j for j in done.values() if j.dimension in dims]
    with out.open("a", encoding="utf-8") as fh, progress_for() as progress:
        total = len(items) * len(dims)
        progress.start(f"scoring with {judge.params.model}", total)
        progress.advance(sum(1 for it in items for d in dims if (it.id, d) in done))

        def record(j: Judgement) -> None:
            fh.write(j.model_dump_json() + "\n")
            fh.flush()
            results.append(j)
            progress.advance()

        run_sync(judge.apredict(items, dims, on_judgement=record, skip=set(done)))
    _summary(results, dims, out, judge)
    if mlflow_feedback:
        from judgealign.integrations.mlflow.assessments import log_verdicts

        trace_ids = {it.id for it in traced}
        counts = log_verdicts(
            [j for j in results if j.item in trace_ids], judge, tracking_uri=feedback_uri
        )
        Console().print(
            f"MLflow feedback on {len(trace_ids)} traces: {counts['logged']} logged, "
            f"{counts['updated']} updated, {counts['unchanged']} unchanged",
            highlight=False,
        )
    check_failures(results, max_failed)


def _summary(results: list[Judgement], dims: list[str], out: Path, judge: Judge) -> None:
    by: dict[str, list[Judgement]] = defaultdict(list)
    for j in results:
        by[j.dimension].append(j)
    table = Table(title=f"{len(results)} judgements -> {out}")
    for col in ("dimension", "n", "mean score", "N/A", "failed"):
        table.add_column(col, justify="left" if col == "dimension" else "right")
    for d in dims:
        js = by.get(d, [])
        scale = judge.rubric.dimension(d).scale
        ok = [j.score for j in js if j.ok and j.score is not None and not scale.is_na(j.score)]
        na = sum(1 for j in js if j.ok and scale.is_na(j.score))
        mean = f"{sum(ok) / len(ok):.2f}" if ok else "-"
        table.add_row(d, str(len(js)), mean, str(na), str(sum(1 for j in js if not j.ok)))
    Console().print(table)
    usage = judge.usage()
    Console().print(
        f"model calls: {usage.calls} (+{usage.cached_calls} cached), "
        f"tokens: {usage.prompt_tokens} prompt / {usage.completion_tokens} completion"
    )


def _score_on_spark(
    judge: Judge,
    paths: list[Path],
    dims: list[str],
    out: Path,
    opts: JudgeOptions,
    *,
    retry_failed: bool,
    max_failed: float,
    master: str | None,
    out_format: Literal["auto", "parquet", "delta"],
) -> None:
    from judgealign.integrations.spark import read_items, score_dataframe
    from judgealign.integrations.spark.session import session_for

    if out.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        raise DataError(
            f"--out {out}: with --engine spark, --out is a folder (a Parquet or Delta table), "
            "e.g. --out judgements/"
        )
    spark = session_for(master)
    started = datetime.now(UTC)
    with progress_for() as progress:
        rows = score_dataframe(
            judge,
            read_items(spark, [str(p) for p in paths]),
            out=str(out),
            dimensions=dims,
            concurrency=opts.concurrency,
            cache_dir=opts.cache_dir,
            retry_failed=retry_failed,
            format=out_format,
            progress=progress,
        )
    _spark_summary(rows, dims, out, judge, max_failed, started)


def _spark_summary(
    rows: Any, dims: list[str], out: Path, judge: Judge, max_failed: float, started: datetime
) -> None:
    """The local summary's table, counted by Spark (the judgements stay in the table)."""
    from pyspark.sql import functions as F

    ok = F.col("error").isNull() & F.col("score").isNotNull()
    counts = rows.groupBy("dimension", "score", ok.alias("ok")).count().collect()
    failed_by = (
        rows.where(~ok)
        .groupBy(F.substring(F.coalesce("error", F.lit("no score")), 1, 160).alias("why"))
        .count()
        .orderBy(F.col("count").desc())
        .limit(3)
        .collect()
    )
    # What this command spent (a resumed run's earlier judgements cost nothing now).
    now = rows.where(F.col("scored_at") >= F.lit(started))
    usage = now.agg(*(F.sum(f"usage.{f}").alias(f) for f in Usage.model_fields)).first()
    total = sum(int(r["count"]) for r in counts)
    table = Table(title=f"{total} judgements -> {out}")
    for col in ("dimension", "n", "mean score", "N/A", "failed"):
        table.add_column(col, justify="left" if col == "dimension" else "right")
    for d in dims:
        scale = judge.rubric.dimension(d).scale
        mine = [r for r in counts if r["dimension"] == d]
        scored = [(r["score"], r["count"]) for r in mine if r["ok"] and not scale.is_na(r["score"])]
        n_scored = sum(c for _, c in scored)
        mean = f"{sum(s * c for s, c in scored) / n_scored:.2f}" if n_scored else "-"
        na = sum(r["count"] for r in mine if r["ok"] and scale.is_na(r["score"]))
        failed = sum(r["count"] for r in mine if not r["ok"])
        table.add_row(d, str(sum(r["count"] for r in mine)), mean, str(na), str(failed))
    Console().print(table)
    spent = Usage(**{f: (usage[f] or 0) if usage else 0 for f in Usage.model_fields})
    Console().print(
        f"model calls: {spent.calls} (+{spent.cached_calls} cached), "
        f"tokens: {spent.prompt_tokens} prompt / {spent.completion_tokens} completion"
    )
    reasons = tuple((str(r["why"]), int(r["count"])) for r in failed_by)
    failed_total = sum(int(r["count"]) for r in counts if not r["ok"])
    check_failure_summary(
        FailureSummary(failed=failed_total, total=total, reasons=reasons), max_failed
    )
