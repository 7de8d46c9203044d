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

from judgealign.cli.common import one_line_errors
from judgealign.cli.options import DEFAULT_CACHE, CacheDirOption, JudgeOptions
from judgealign.data.item import Item
from judgealign.judge.params import Variant
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
    cache_dir: CacheDirOption = DEFAULT_CACHE,
    timings: Annotated[
        Path | None, typer.Option(help="Write install/demo time and peak memory here (JSON).")
    ] = None,
    install_seconds: Annotated[
        float | None, typer.Option(help="Installation time to record in --timings.")
    ] = None,
) -> None:
    """Cross-validated baseline vs aligned ml-notebook judges on the demo set."""
    from judgealign.demo import load_demo
    from judgealign.evaluation.experiment import evaluate
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
    # The benchmarked defaults, except two that bound a CPU model's answer time: a short
    # rationale and few guidelines (reflection output is the slowest part on a small model).
    judge = JudgeOptions(
        model=model,
        embedder=embedder,
        max_tokens=150,
        max_guidelines=8 if full else 4,
        seed=seed,
        cache_dir=cache_dir,
        concurrency=1,
    ).new_judge(rubric)
    console = Console()
    started = time.perf_counter()
    console.print(
        f"demo: {len(chosen)} notebooks x {len(rubric.dimensions)} dimensions, "
        f"{folds}-fold CV, variants {', '.join(variants)}, model {model}"
    )
    report = evaluate(
        judge,
        chosen,
        labels,
        variants=variants,
        folds=folds,
        seed=seed,
        run_dir=out,
        concurrency=1,
        name="demo",
    )
    render_console(report, console)
    show_learned(out, console)
    console.print(f"\nHTML report: {(out / 'report.html').resolve()}")
    console.print(NEXT_STEPS, highlight=False, soft_wrap=True)
    if timings is not None:
        write_timings(timings, report, time.perf_counter() - started, install_seconds, full)


NEXT_STEPS = """
Next, with your own notebooks (NB/) and expert labels (labels.jsonl):
  label in a browser   judgealign label NB/ --rubric ml-notebook --labels labels.jsonl
  measure a judge      judgealign evaluate --rubric ml-notebook --items NB/ \\
                           --labels labels.jsonl --model openai:gpt-4.1-mini --out runs/mine
  align and keep it    judgealign align --rubric ml-notebook --items NB/ \\
                           --labels labels.jsonl --model openai:gpt-4.1-mini --out judge.json
  score new notebooks  judgealign score NEW/ --judge judge.json --out scores.jsonl
Any OpenAI-compatible endpoint works (OPENAI_BASE_URL); Python: README.md, "In Python"."""


def show_learned(run_dir: Path, console: Console) -> None:
    """Print what the first fold's judge learned: each dimension's guidelines with their
    support, so the demo shows the memory and not only its effect."""
    from judgealign.cli.align_cmd import print_guidelines
    from judgealign.judge.persistence import load_judge

    first = run_dir / "judges" / "fold-0.judge.json"
    if not first.exists():
        return
    judge = load_judge(first)
    if judge.memory_ is None:
        return
    console.print("\n[bold]What the aligned judge learned[/bold] (fold 1, its training labels)")
    print_guidelines(judge.memory_, list(judge.rubric.dimension_ids), console)


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
        "install_seconds": install_seconds,
        "demo_seconds": round(demo_seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "llm_calls": report.usage_alignment.calls + report.usage_scoring.calls,
        "cached_calls": report.usage_alignment.cached_calls + report.usage_scoring.cached_calls,
        "mae": maes,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
