"""``judgealign stress``: plant known flaws in notebooks and measure whether judges notice."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from judgealign.cli.common import check_failures, load_items_and_refs, one_line_errors
from judgealign.cli.options import (
    DEFAULT_CACHE,
    CacheDirOption,
    ConcurrencyOption,
    EmbedderOption,
    ItemBudgetOption,
    JudgeOptions,
    MaxFailedOption,
    MaxTokensOption,
    ModelOption,
    RetryFailedOption,
)
from judgealign.errors import ConfigError, DataError
from judgealign.judge.judge import Judge
from judgealign.judge.persistence import load_judge
from judgealign.rubric import load_rubric


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "judge"


def build_judges(
    specs: list[str], rubric: str | None, opts: JudgeOptions, baseline: bool
) -> tuple[dict[str, Judge], dict[str, str]]:
    """Judges by label from ``--judge`` values: ``[LABEL=]judge.json`` (an aligned judge
    file) or ``[LABEL=]provider:model`` (a zero-shot judge on ``--rubric``). With
    ``baseline`` a fitted judge file's zero-shot twin (same model and settings, no memory)
    comes first, as the reference."""
    judges: dict[str, Judge] = {}
    sources: dict[str, str] = {}
    for spec in specs:
        label, sep, value = spec.partition("=")
        if not sep or ":" in label or "/" in label:
            label, value = "", spec
        path = Path(value)
        if path.is_file() or value.endswith(".json"):
            judge = load_judge(path)
            opts.apply(judge)
            if rubric is not None and load_rubric(rubric).id != judge.rubric.id:
                raise DataError(f"--rubric {rubric} differs from {path}'s {judge.rubric.id!r}")
            label = _label(label or path.stem)
            source = str(path)
        elif ":" in value:
            if rubric is None:
                raise DataError(f"--judge {value}: a model needs --rubric NAME to judge on")
            judge = replace(opts, model=value).new_judge(load_rubric(rubric), needs_embedder=False)
            label = _label(label or value)
            source = f"zero-shot {value}"
        else:
            raise DataError(
                f"--judge {spec}: not a judge file or provider:model; give judge.json from "
                "`judgealign align` or a model like local:default"
            )
        if label in judges:
            raise ConfigError(f"--judge: two judges labelled {label!r}; name them LABEL=...")
        if baseline and judge.memory_ is not None and judge.variant != "baseline":
            twin = judge.ablation("baseline")
            same = any(
                j.memory_ is None and j.params.model_dump() == twin.params.model_dump()
                for j in judges.values()
            )
            if not same:
                judges[f"{label}-baseline"] = twin
                sources[f"{label}-baseline"] = f"{source} without its memory"
        judges[label] = judge
        sources[label] = source
    return judges, sources


def _list_probes(console: Console) -> None:
    from judgealign.stress.catalog import PROBES

    table = Table(title="probes (select with --probes NAME,KIND,...)", title_justify="left")
    for col in ("probe", "kind", "dimension", "expected"):
        table.add_column(col, no_wrap=True)
    table.add_column("what it does")
    for p in PROBES.values():
        s = p.spec
        expected = (
            f"≤ {s.max_score}"
            if s.kind == "flaw"
            else "no change"
            if s.kind == "invariance"
            else f"not moved to {s.target_score}"
        )
        table.add_row(p.name, s.kind, s.dimension or "all", expected, s.summary)
    console.print(table)


@one_line_errors
def stress(
    out: Annotated[
        Path | None, typer.Option(help="Run folder (stress.json, stress.html; resumable).")
    ] = None,
    judge: Annotated[
        list[str] | None,
        typer.Option(
            help="[LABEL=]judge.json from `align`, or [LABEL=]provider:model for a zero-shot "
            "judge (with --rubric); repeat to compare judges (the first is the reference)."
        ),
    ] = None,
    items: Annotated[
        list[Path] | None, typer.Option(help="Notebooks or folders of notebooks.")
    ] = None,
    probes: Annotated[
        str | None,
        typer.Option(help="Comma list of probe names or kinds: flaw, invariance, injection."),
    ] = None,
    dimension: Annotated[list[str] | None, typer.Option(help="Only these dimensions.")] = None,
    rubric: Annotated[
        str | None, typer.Option(help="Rubric for provider:model judges (built-in or YAML).")
    ] = None,
    baseline: Annotated[
        bool,
        typer.Option(help="Also run each aligned judge file without its memory (zero-shot)."),
    ] = True,
    limit: Annotated[int | None, typer.Option(help="Use the first N notebooks.")] = None,
    model: ModelOption = None,
    embedder: EmbedderOption = None,
    item_budget: ItemBudgetOption = None,
    max_tokens: MaxTokensOption = None,
    seed: Annotated[int, typer.Option(help="Seed for the probes and the bootstrap.")] = 0,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 10_000,
    concurrency: ConcurrencyOption = 4,
    cache_dir: CacheDirOption = DEFAULT_CACHE,
    max_failed: MaxFailedOption = 0.5,
    retry_failed: RetryFailedOption = False,
    dry_run: Annotated[
        bool, typer.Option(help="Only plant the probes: write the mutants, call no model.")
    ] = False,
    list_probes: Annotated[bool, typer.Option(help="List the probes and exit.")] = False,
    mlflow: Annotated[bool, typer.Option(help="Log the run to MLflow.")] = False,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: SQLite in the run folder).")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default: judgealign-stress-RUBRIC).")
    ] = None,
) -> None:
    """Plant known flaws (and harmless edits, and text aimed at the judge) in notebooks and
    measure per dimension whether each judge notices: detection, false alarms, injection
    shift."""
    from judgealign.stress.catalog import select_probes
    from judgealign.stress.runner import StressTest, plant

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # CI logs and notebooks: wide tables stay readable
    if list_probes:
        _list_probes(console)
        return
    if out is None:
        raise DataError("give --out RUN (a run folder: new, or one to resume)")
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} is a file; name a run folder (new, or one to resume)")
    if not items:
        raise DataError("give --items NOTEBOOKS (notebooks or folders of notebooks)")
    notebooks = [it for it in load_items_and_refs(items) if it.kind == "notebook"]
    if not notebooks:
        raise DataError("--items: no .ipynb notebook found; stress tests need notebooks")
    if limit is not None:
        notebooks = notebooks[:limit]
    chosen = select_probes(probes)
    if dry_run:
        outcomes, _ = plant(notebooks, chosen, seed, out)
        table = Table(title=f"{len(notebooks)} notebook(s) -> {out}", title_justify="left")
        for col in ("probe", "kind", "applied", "not applicable"):
            table.add_column(col, no_wrap=True)
        table.add_column("most frequent reason")
        for p in chosen:
            mine = [o for o in outcomes if o.probe == p.name]
            why = [o.reason for o in mine if not o.applied]
            top = max(set(why), key=why.count) if why else ""
            table.add_row(
                p.name, p.spec.kind, str(sum(o.applied for o in mine)), str(len(why)), top
            )
        console.print(table)
        console.print(f"mutants: {out / 'mutants'}  (what changed: {out / 'probes.jsonl'})")
        return
    if not judge:
        raise DataError("give --judge judge.json (or --judge provider:model with --rubric)")
    opts = JudgeOptions(
        model=model,
        embedder=embedder,
        item_budget=item_budget,
        max_tokens=max_tokens,
        cache_dir=cache_dir,
        concurrency=concurrency,
    )
    judges, sources = build_judges(judge, rubric, opts, baseline)
    from judgealign.progress import progress_for

    with progress_for() as progress:
        test = StressTest(
            judges,
            probes=probes,
            dimensions=dimension,
            seed=seed,
            run_dir=out,
            concurrency=concurrency,
            progress=progress,
            retry_failed=retry_failed,
            n_resamples=resamples,
            name=out.name,
            sources=sources,
        )
        report = test.run(notebooks)
    from judgealign.stress.console import render_console

    render_console(report, console)
    console.print(f"report: {out / 'stress.html'}  (data: {out / 'stress.json'})")
    if mlflow:
        from judgealign.report.mlflow_log import default_tracking_uri
        from judgealign.stress.tracking import log_stress

        uri = tracking_uri or default_tracking_uri(out)
        run_id = log_stress(report, out, tracking_uri=uri, experiment=experiment, run_name=out.name)
        console.print(f"MLflow run {run_id} in {uri}")
    check_failures(test.judgements_, max_failed)
