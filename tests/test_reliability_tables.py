"""One n per comparison: a row's two MAEs are over the same paired items, and n says how many.

A baseline that scored 25 items beside a variant that scored 24 (one judgement failed) used
to be shown as two MAEs over different items under the baseline's n.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from rich.console import Console

from judgealign.demo import load_demo
from judgealign.evaluation.runner import Evaluator
from judgealign.evaluation.summary import build_report
from judgealign.judge.judge import Judge
from judgealign.report.console import render_console
from judgealign.report.html_tables import summary_table
from judgealign.report.markdown import render_markdown
from judgealign.report.model import EvaluationReport
from judgealign.report.table import fmt_interval, summary_rows
from judgealign.rubric import load_rubric

DIM = "model_use"


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    items, labels = load_demo(dimensions=[DIM])
    rubric = load_rubric("ml-notebook").subset([DIM])
    judge = Judge(rubric, model="fake:mimic", embedder="fake")
    evaluator = Evaluator(judge, folds=2, variants=["baseline", "full"], seed=0)
    data = evaluator.run(items, labels)
    # Fail the full judge on the item where the baseline erred most: leaving it out of the
    # pair changes the baseline's MAE, so a row that mixed the two sets would show.
    expert = data.expert
    base = data.judgements["baseline"]
    worst = max(
        (k for k in base if base[k].ok and expert.get(k) not in (None, 0)),
        key=lambda k: abs(base[k].score - expert[k]),  # type: ignore[operator]
    )
    full = data.judgements["full"]
    full[worst] = full[worst].model_copy(update={"score": None, "error": "provider error: 500"})
    return build_report(
        rubric,
        judge.params,
        data,
        items=items,
        labels=labels,
        variants=evaluator.variants,
        folds=2,
        seed=0,
        n_resamples=300,
    )


def test_the_row_compares_the_paired_items(report: EvaluationReport) -> None:
    base, full = report.result("baseline", DIM), report.result("full", DIM)
    cmp = report.comparison(DIM, "full")
    assert base is not None and full is not None and cmp is not None
    assert full.n_scored == base.n_scored - 1 == cmp.n
    assert cmp.reference_mae is not None and cmp.variant_mae is not None
    # The paired baseline MAE is over the n items, not over all the baseline scored.
    assert cmp.reference_mae.estimate == pytest.approx(cmp.mae_reference)
    assert base.mae is not None and cmp.reference_mae.estimate != pytest.approx(base.mae.estimate)
    assert cmp.variant_mae.estimate - cmp.reference_mae.estimate == pytest.approx(
        cmp.delta.estimate
    )
    (row,) = summary_rows(report)
    assert row.cells[2] == str(cmp.n)
    assert row.cells[3] == fmt_interval(cmp.reference_mae)
    assert row.cells[4] == fmt_interval(cmp.variant_mae)


def test_console_markdown_and_html_show_the_paired_n(report: EvaluationReport) -> None:
    cmp = report.comparison(DIM, "full")
    assert cmp is not None
    buf = io.StringIO()
    render_console(report, Console(file=buf, width=220, color_system=None))
    line = next(ln for ln in buf.getvalue().splitlines() if ln.strip().startswith(DIM))
    assert re.search(rf"\bfull\s+{cmp.n}\s", line)
    assert "n: items the expert and both judges scored" in buf.getvalue()
    md_row = next(ln for ln in render_markdown(report).splitlines() if f"| {DIM} | full" in ln)
    assert f"| {cmp.n} | {fmt_interval(cmp.reference_mae)} |" in md_row
    html = summary_table(report)
    assert f'<td class="num">{cmp.n}</td>' in html
    assert f"{cmp.reference_mae.estimate:.2f}<br>" in html  # type: ignore[union-attr]


def test_a_report_without_paired_intervals_still_renders(report: EvaluationReport) -> None:
    old = report.model_copy(
        update={
            "comparisons": [
                c.model_copy(update={"reference_mae": None, "variant_mae": None})
                for c in report.comparisons
            ]
        }
    )
    (row,) = summary_rows(old)
    cmp = old.comparisons[0]
    assert row.cells[3] == f"{cmp.mae_reference:.2f}" and row.cells[2] == str(cmp.n)
    assert 'id="summary-table"' in summary_table(old)


def test_without_a_baseline_a_variant_shows_its_own_n(report: EvaluationReport) -> None:
    cfg = report.config.model_copy(update={"variants": ["full"]})
    alone = report.model_copy(update={"config": cfg, "comparisons": []})
    (row,) = summary_rows(alone, reference="baseline")
    full = report.result("full", DIM)
    assert full is not None and full.mae is not None
    assert row.cells[2] == str(full.n_scored) and row.cells[3] == "—"
    assert np.isclose(float(row.cells[4].split()[0]), round(full.mae.estimate, 2))


def test_a_narrow_console_moves_n_under_the_table(report: EvaluationReport) -> None:
    cmp = report.comparison(DIM, "full")
    assert cmp is not None
    buf = io.StringIO()
    render_console(report, Console(file=buf, width=80, color_system=None))
    assert f"{DIM}: n = {cmp.n} full; median predictor" in " ".join(buf.getvalue().split())
