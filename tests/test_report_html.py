"""The HTML report: self-contained, escaped, robust to missing data, and it renders in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from judgealign.demo import load_demo
from judgealign.evaluation.experiment import run_evaluation
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import JudgeParams, Variant
from judgealign.report.html import render_html, write_html
from judgealign.report.html_tables import judgement_table
from judgealign.report.model import (
    CurvePoint,
    DimensionResult,
    EvaluationReport,
    Interval,
    JudgementRecord,
    ReferenceLine,
    RunConfig,
)
from judgealign.report.plots import (
    confusion_plot,
    learning_curve_plot,
    mae_plot,
    nice_ticks,
    variant_colour,
)
from judgealign.rubric import load_rubric

DIMS = ["model_use", "data_imputation"]
VARIANTS: list[Variant] = ["baseline", "semantic", "episodic", "full"]
EVIL = "<script>alert(1)</script>"
SVG_RE = re.compile(r"<svg\b.*?</svg>", re.S)


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    items, labels = load_demo(dimensions=DIMS)
    rubric = load_rubric("ml-notebook").subset(DIMS)
    return run_evaluation(
        rubric,
        items,
        labels,
        JudgeParams(model="fake:mimic"),
        folds=2,
        variants=VARIANTS,
        n_resamples=200,
        learning_curve=[5, 10],
    )


@pytest.fixture(scope="module")
def page(report: EvaluationReport) -> str:
    return render_html(report)


def sparse_report() -> EvaluationReport:
    """A report with no intervals, no matrix, no curve, no references and no judgements."""
    rubric = load_rubric("ml-notebook").subset(["model_use"])
    config = RunConfig(
        rubric_id=rubric.id,
        model="fake:constant",
        embedder="fake",
        folds=2,
        seed=0,
        variants=["baseline", "full"],
        dimensions=["model_use"],
        n_items=0,
        n_groups=0,
        n_labels=0,
        n_resamples=100,
        ci_method="percentile",
    )
    empty = DimensionResult(
        variant="baseline", dimension="model_use", n_items=3, n_scored=0, mae=None, bias=None,
        failed=3,
    )  # fmt: skip
    return EvaluationReport(
        created="2025-01-01T00:00:00+00:00",
        judgealign_version="0.0.0",
        config=config,
        rubric=rubric,
        results=[empty],
    )


def test_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert not re.search(r"\ssrc\s*=", page)
    # the only links are in-page anchors
    assert all(h.startswith("#") for h in re.findall(r"href=['\"]([^'\"]*)", page))
    assert "<style>" in page


def test_page_shows_config_summary_and_usage(report: EvaluationReport, page: str) -> None:
    assert 'id="summary-table"' in page
    for text in ("fake:mimic", "ml-notebook", "Leakage checked", "Alignment", "Scoring"):
        assert text in page
    assert f"{report.usage_scoring.calls:,}" in page
    for variant in VARIANTS:
        assert variant in page
    assert "Anti-conservative" not in page


def test_one_svg_per_plot_kind(page: str) -> None:
    svgs = SVG_RE.findall(page)
    kinds = [m.group(1) for s in svgs if (m := re.search(r'class="plot plot-(\w+)"', s))]
    assert len(kinds) == len(svgs)
    assert kinds.count("mae") == 1
    assert kinds.count("bias") == 1
    assert kinds.count("curve") == len(DIMS)
    assert kinds.count("confusion") == len(DIMS) * len(VARIANTS)
    for svg in svgs:
        assert 'role="img"' in svg and "aria-label=" in svg and "<title>" in svg
        ET.fromstring(svg)  # well-formed markup
    # reference marks and fixed variant colours are drawn
    assert "median predictor" in svgs[0]
    assert variant_colour("full") in svgs[0] and variant_colour("baseline") in svgs[0]


def test_untrusted_text_is_escaped(report: EvaluationReport) -> None:
    first = report.judgements[0]
    bad = first.judgement.model_copy(
        update={"item": EVIL, "rationale": f"because {EVIL}", "error": EVIL, "episodes": (EVIL,)}
    )
    iv = Interval(estimate=1, low=0.5, high=1.5)
    evil_result = DimensionResult(
        variant=EVIL, dimension=EVIL, n_items=1, n_scored=1, mae=iv, bias=iv,
        levels=[EVIL, "2"], confusion=[[1, 0], [0, 1]],
    )  # fmt: skip
    evil_point = CurvePoint(dimension=EVIL, variant=EVIL, n_labels=3, mae=iv)
    config = report.config.model_copy(
        update={"name": EVIL, "dimensions": [*report.config.dimensions, EVIL]}
    )
    evil = report.model_copy(
        update={
            "judgements": [first.model_copy(update={"judgement": bad}), *report.judgements[1:]],
            "results": [*report.results, evil_result],
            "learning_curve": [*report.learning_curve, evil_point],
            "notes": [EVIL],
            "config": config,
        }
    )
    html = render_html(evil)
    for svg in SVG_RE.findall(html):
        ET.fromstring(svg)
    assert EVIL not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()


def test_draw_size_warns_about_anti_conservative_intervals(report: EvaluationReport) -> None:
    config = report.config.model_copy(update={"draw_size": 100})
    html = render_html(report.model_copy(update={"config": config}))
    assert "Anti-conservative" in html and "100-of-50" in html


def test_missing_intervals_and_empty_learning_curve_render() -> None:
    html = render_html(sparse_report())
    svgs = SVG_RE.findall(html)
    for kind in ("mae", "bias", "curve", "confusion"):
        assert f"plot plot-{kind}" in html
    for svg in svgs:
        ET.fromstring(svg)
    assert "no learning curve" in html.lower()
    assert "No judgements" in html
    assert "failed judgement" in html  # warning for the 3 failures


def test_plots_handle_single_points_and_odd_input() -> None:
    one = CurvePoint(
        dimension="d", variant="full", n_labels=5, mae=Interval(estimate=1, low=1, high=1)
    )
    svg = learning_curve_plot([one], "d", reference=ReferenceLine(dimension="d"))
    assert "<polygon" not in svg and "<circle" in svg
    ET.fromstring(svg)
    flat = DimensionResult(
        variant="x", dimension="d", n_items=1, n_scored=1,
        mae=Interval(estimate=0, low=0, high=0), bias=None,
        levels=["1"], confusion=[[1, 2]],  # ragged: not a square matrix
    )  # fmt: skip
    ET.fromstring(mae_plot([flat]))
    assert "no matrix" in confusion_plot(flat)
    assert nice_ticks(2.0, 2.0)[0] <= 2.0 <= nice_ticks(2.0, 2.0)[-1]
    assert nice_ticks(-0.3, 1.2)[0] <= -0.3


def test_judgement_table_is_capped(report: EvaluationReport) -> None:
    table = judgement_table(report, limit=5)
    assert table.count("<tr class=") == 5
    assert f"Showing the first 5 of {len(report.judgements)}" in table


def test_judgement_rows_show_provenance() -> None:
    rec = JudgementRecord(
        variant="full",
        fold=1,
        expert=0.0,  # N/A on model_use
        judgement=Judgement(
            item="nb1", dimension="model_use", score=2, rationale="x" * 1000,
            guidelines=("g-1",), episodes=("nb2::model_use::expert",),
        ),
    )  # fmt: skip
    report = sparse_report().model_copy(update={"judgements": [rec]})
    table = judgement_table(report)
    assert "g-1" in table and "nb2::model_use::expert" in table
    assert "x" * 300 + "…" in table and "x" * 301 not in table
    assert ">N/A<" in table


def test_write_html_is_atomic_and_creates_folders(report: EvaluationReport, tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "report.html"
    assert write_html(report, path) == path
    first = path.read_text(encoding="utf-8")
    assert first == render_html(report)
    write_html(sparse_report(), path)  # overwrites in place
    assert path.read_text(encoding="utf-8") != first
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_page_renders_in_headless_chromium(report: EvaluationReport, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no headless chromium: apt-get install chromium")
    path = write_html(report, tmp_path / "report.html")
    base = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*base, "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    n_plots = 2 + len(DIMS) + len(DIMS) * len(VARIANTS)
    assert dom.count("<svg") == n_plots
    for kind in ("mae", "bias", "curve", "confusion"):
        assert f'class="plot plot-{kind}"' in dom
    assert 'id="summary-table"' in dom
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1200,2000", path.as_uri()],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert shot.exists() and shot.stat().st_size > 10_000
