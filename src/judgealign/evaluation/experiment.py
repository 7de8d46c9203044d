"""``run_evaluation``: the whole experiment, from items and labels to a saved report."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.evaluation.runner import Evaluator, Progress
from judgealign.evaluation.summary import build_report
from judgealign.judge.params import VARIANTS, JudgeParams, Variant
from judgealign.providers.protocol import LLM, Embedder
from judgealign.report.model import EvaluationReport
from judgealign.rubric.model import Rubric


def run_evaluation(
    rubric: Rubric,
    items: Sequence[Item],
    labels: Sequence[Label],
    params: JudgeParams,
    *,
    folds: int = 4,
    variants: Sequence[Variant] = VARIANTS,
    seed: int = 0,
    run_dir: Path | None = None,
    cache_dir: Path | None = None,
    concurrency: int = 4,
    learning_curve: Sequence[int] = (),
    rater_labels: Sequence[Label] = (),
    n_resamples: int = 10_000,
    ci_method: str = "bca",
    draw_size: int | None = None,
    progress: Progress | None = None,
    llm: LLM | None = None,
    reflection_llm: LLM | None = None,
    embedder: Embedder | None = None,
    name: str = "",
) -> EvaluationReport:
    """Cross-validate baseline and aligned judges and return (and save) the report.

    With ``run_dir``, finished judgements and fitted judges are kept there, so rerunning the
    same call after an interruption recomputes nothing; the run folder then holds
    ``report.json``, ``report.html`` and ``report.md``.

    >>> from judgealign.demo import load_demo
    >>> from judgealign.rubric import load_rubric
    >>> items, labels = load_demo(dimensions=["model_use"])
    >>> rubric = load_rubric("ml-notebook").subset(["model_use"])
    >>> report = run_evaluation(rubric, items, labels, JudgeParams(model="fake:mimic"),
    ...                         variants=["baseline", "full"], n_resamples=200)
    >>> report.result("full", "model_use").n_scored > 0
    True
    """
    started = time.perf_counter()
    evaluator = Evaluator(
        rubric,
        params,
        folds=folds,
        variants=variants,
        seed=seed,
        run_dir=run_dir,
        cache_dir=cache_dir,
        concurrency=concurrency,
        learning_curve=learning_curve,
        progress=progress,
        llm=llm,
        reflection_llm=reflection_llm,
        embedder=embedder,
    )
    data = evaluator.run(items, labels)
    report = build_report(
        rubric,
        params,
        data,
        items=items,
        labels=labels,
        rater_labels=rater_labels,
        variants=evaluator.variants,
        folds=folds,
        seed=seed,
        n_resamples=n_resamples,
        ci_method=ci_method,
        draw_size=draw_size,
        wall_seconds=time.perf_counter() - started,
        name=name,
    )
    if run_dir is not None:
        from judgealign.report.html import write_html
        from judgealign.report.markdown import write_markdown

        report.save(run_dir / "report.json")
        write_html(report, run_dir / "report.html")
        write_markdown(report, run_dir / "report.md")
    return report
