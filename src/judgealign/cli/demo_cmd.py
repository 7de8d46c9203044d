"""``judgealign demo``: the main job, offline, on the shipped demo notebooks."""

from __future__ import annotations

import json
import platform
import resource
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from judgealign.cli.common import (
    ExpectedScoreOption,
    RichProgress,
    ScoreFirstOption,
    one_line_errors,
)
from judgealign.data.item import Item
from judgealign.judge.params import JudgeParams, Variant
from judgealign.report.model import EvaluationReport

# Two of the three dimensions where an unaligned judge is furthest from experts in the
# reference study. Sized by measurement: on 2 cores a 1.5B judgement takes 12-33 s and one
# reflection call 25-110 s, so 6 notebooks x 2 dimensions x 2 variants with 2 folds (24
# judgements, 4 reflection calls) is what fits in 15 minutes; --full runs everything.
DEMO_DIMENSIONS = ("model_training", "data_imputation")
DEMO_ITEMS = 6
DEMO_FOLDS = 2


@one_line_errors
def demo(
    full: Annotated[
        bool, typer.Option(help="All notebooks, all nine dimensions, all variants.")
    ] = False,
    model: Annotated[str, typer.Option(help="Judge model.")] = "local:default",
    embedder: Annotated[str, typer.Option(help="Embedder.")] = "local",
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/demo"),
    items: Annotated[int | None, typer.Option(help="Number of demo notebooks.")] = None,
    folds: Annotated[
        int | None, typer.Option(help="Cross-validation folds (default 2; 4 with --full).")
    ] = None,
    dimension: Annotated[
        list[str] | None,
        typer.Option(help="Dimensions to run (default model_training, data_imputation)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    expected_score: ExpectedScoreOption = False,
    score_first: ScoreFirstOption = False,
    cache_dir: Annotated[Path | None, typer.Option(help="Response cache.")] = Path(
        ".judgealign-cache"
    ),
    timings: Annotated[
        Path | None, typer.Option(help="Write install/demo time and peak memory here (JSON).")
    ] = None,
    install_seconds: Annotated[
        float | None, typer.Option(help="Installation time to record in --timings.")
    ] = None,
) -> None:
    """Cross-validated baseline vs aligned ml-notebook judges on the demo set."""
    from judgealign.demo import load_demo
    from judgealign.evaluation.experiment import run_evaluation
    from judgealign.report.console import render_console
    from judgealign.rubric import load_rubric

    rubric = load_rubric("ml-notebook")
    for d in dimension or ():
        rubric.dimension(d)
    dims = list(dimension) if dimension else (None if full else list(DEMO_DIMENSIONS))
    folds = folds if folds is not None else (4 if full else DEMO_FOLDS)
    all_items, labels = load_demo(dimensions=dims)
    n = items if items is not None else (None if full else DEMO_ITEMS)
    chosen = select_spread(all_items, n, seed) if n is not None else list(all_items)
    keep = {it.id for it in chosen}
    labels = [lb for lb in labels if lb.item in keep]
    if dims:
        rubric = rubric.subset(dims)
    variants: list[Variant] = (
        ["baseline", "semantic", "episodic", "full"] if full else ["baseline", "full"]
    )
    params = JudgeParams(
        model=model,
        embedder=embedder,
        k=2,
        episode_budget_tokens=250,
        item_budget_tokens=1500,
        max_tokens=150,
        guideline_budget_tokens=350,
        # Few, short guidelines: reflection output is the slowest part on a small CPU model.
        max_guidelines=8 if full else 4,
        use_expected_score=expected_score,
        score_first=score_first,
        seed=seed,
    )
    console = Console()
    started = time.perf_counter()
    console.print(
        f"demo: {len(chosen)} notebooks x {len(rubric.dimensions)} dimensions, "
        f"{folds}-fold CV, variants {', '.join(variants)}, model {model}"
    )
    with RichProgress() as progress:
        report = run_evaluation(
            rubric,
            chosen,
            labels,
            params,
            folds=folds,
            variants=variants,
            seed=seed,
            run_dir=out,
            cache_dir=cache_dir,
            concurrency=1,
            progress=progress,
            name="demo",
        )
    render_console(report, console)
    console.print(f"\nHTML report: {(out / 'report.html').resolve()}")
    if timings is not None:
        write_timings(timings, report, time.perf_counter() - started, install_seconds, full)


def select_spread(items: Sequence[Item], n: int, seed: int) -> list[Item]:
    """``n`` items spread evenly over the demo's base notebooks (groups), deterministically."""
    import numpy as np

    by_group: dict[str, list[Item]] = {}
    for it in sorted(items, key=lambda i: i.id):
        by_group.setdefault(it.group_id, []).append(it)
    rng = np.random.default_rng(seed)
    queues = [[int(i) for i in rng.permutation(len(v))] for v in by_group.values()]
    groups = list(by_group.values())
    out: list[Item] = []
    while len(out) < min(n, len(items)):
        for g, q in zip(groups, queues, strict=True):
            if q and len(out) < n:
                out.append(g[q.pop(0)])
    return out


def write_timings(
    path: Path,
    report: EvaluationReport,
    demo_seconds: float,
    install_seconds: float | None,
    full: bool,
) -> None:
    """Record what a new user waits for and how much memory the demo takes."""
    maes = {
        f"{r.variant}.{r.dimension}": round(r.mae.estimate, 3)
        for r in report.results
        if r.mae is not None
    }
    body = {
        "benchmark": "demo",
        "created": report.created,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "full": full,
        "model": report.config.model,
        "embedder": report.config.embedder,
        "items": report.config.n_items,
        "dimensions": report.config.dimensions,
        "variants": report.config.variants,
        "folds": report.config.folds,
        "score_first": bool(report.config.params.get("score_first", False)),
        "expected_score": bool(report.config.params.get("use_expected_score", False)),
        "install_seconds": install_seconds,
        "demo_seconds": round(demo_seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "llm_calls": report.usage_alignment.calls + report.usage_scoring.calls,
        "cached_calls": report.usage_alignment.cached_calls + report.usage_scoring.cached_calls,
        "mae": maes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
