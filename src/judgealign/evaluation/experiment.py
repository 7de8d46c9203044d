"""``evaluate``: the whole experiment, from a judge, items and labels to a saved report."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Literal

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.evaluation.runner import Evaluator
from judgealign.evaluation.summary import BootstrapUnit, build_report, resolve_bootstrap
from judgealign.judge.judge import Judge
from judgealign.judge.params import VARIANTS, Variant
from judgealign.progress import Progress, progress_for
from judgealign.report.views import Report


def evaluate(
    judge: Judge,
    items: Sequence[Item],
    labels: Sequence[Label],
    *,
    variants: Sequence[Variant] = VARIANTS,
    folds: int = 4,
    seed: int = 0,
    run_dir: str | Path | None = None,
    concurrency: int = 4,
    learning_curve: Sequence[int] = (),
    rater_labels: Sequence[Label] = (),
    n_resamples: int = 10_000,
    ci_method: str = "bca",
    draw_size: int | None = None,
    bootstrap: BootstrapUnit = "auto",
    repeats: int = 1,
    progress: Progress | Literal["auto"] | None = "auto",
    retry_failed: bool = False,
    name: str = "",
) -> Report:
    """Cross-validate ``judge``'s variants against the experts and return the report.

    Each variant is a named clone of ``judge`` (``baseline``: the zero-shot judge, always
    included; ``semantic``, ``episodic``, ``full``: the judge reading guidelines, examples
    or both, fitted on the training folds only). Folds are grouped by input so no item's
    group is on both sides, and a leakage guard fails the run if a judgement saw anything
    from its own test fold. With ``run_dir``, finished judgements and fitted judges are kept
    there, so the same call after an interruption recomputes nothing; the folder then holds
    ``report.json``, ``report.html`` and ``report.md``. ``progress="auto"``: a bar on a
    terminal, log lines elsewhere (CI, Jupyter); ``None``: silent. Works inside a running
    event loop (Jupyter) too. A resumed run asks again for judgements that failed on the
    provider's side; ``retry_failed`` also for those whose answer could not be read.

    Statistics: every interval and paired test resamples whole input groups when items share
    one (``bootstrap="auto"``, the default; ``"item"`` resamples items regardless, ``"cluster"``
    groups even when each holds one item). ``repeats`` > 1 repeats the grouped
    cross-validation with fold and judge seeds ``seed + r``: the report then shows each
    variant's MAE per repeat beside its item-sampling interval, and the paired tests carry the
    variance between repeats too. Each repeat refits every fold and rescores the aligned
    variants (the baseline is judged once), so it costs about ``repeats`` times the aligned
    part; with ``run_dir`` an interrupted run resumes, and a later call with more repeats
    computes only the new ones (the learning curve uses the first repeat's folds).
    ``rater_labels``: each rater's labels for the human-human
    reference (MAE and Krippendorff's alpha among raters); without them ``labels`` serve
    when items have several raters.

    >>> import judgealign as ja
    >>> items, labels = ja.load_demo(dimensions=["model_use"])
    >>> judge = ja.Judge(ja.load_rubric("ml-notebook").subset(["model_use"]),
    ...                  model="fake:mimic", embedder="fake")
    >>> report = ja.evaluate(judge, items, labels, variants=["baseline", "full"],
    ...                      n_resamples=200, progress=None)
    >>> report.result("full", "model_use").n_scored > 0
    True
    """
    resolve_bootstrap(bootstrap, (), draw_size)  # a bad choice stops before any model call
    started = time.perf_counter()
    run_path = Path(run_dir) if run_dir is not None else None
    # A live bar must be started and stopped around the run; a given Progress is the caller's.
    shown = progress_for(sys.stderr) if progress == "auto" else nullcontext(progress)
    with shown as bar:
        evaluator = Evaluator(
            judge,
            folds=folds,
            variants=variants,
            seed=seed,
            run_dir=run_path,
            concurrency=concurrency,
            learning_curve=learning_curve,
            progress=bar,
            retry_failed=retry_failed,
            repeats=repeats,
        )
        data = evaluator.run(items, labels)
    report = build_report(
        judge.rubric,
        judge.params,
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
        bootstrap=bootstrap,
        wall_seconds=time.perf_counter() - started,
        name=name,
    )
    if run_path is not None:
        from judgealign.report.html import write_html
        from judgealign.report.markdown import write_markdown

        report.save(run_path / "report.json")
        write_html(report, run_path / "report.html")
        write_markdown(report, run_path / "report.md")
    return report
