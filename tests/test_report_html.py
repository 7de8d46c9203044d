"""The HTML report: self-contained, escaped, robust to missing data, and it renders in a browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.demo import load_demo
from judgealign.evaluation.experiment import evaluate
from judgealign.judge.judge import Judge
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import Variant
from judgealign.report.html import render_html, write_html
from judgealign.report.html_judgements import judgement_section, learned_section
from judgealign.report.model import (
    CurvePoint,
    DimensionResult,
    EvaluationReport,
    FoldMemory,
    Interval,
    JudgementRecord,
    LearnedGuideline,
    ReferenceLine,
    RunConfig,
    ShownExample,
)
from judgealign.report.plots import (
    confusion_plot,
    learning_curve_plot,
    mae_plot,
    nice_ticks,
    variant_colour,
)
from judgealign.report.svg import esc
from judgealign.rubric import load_rubric

DIMS = ["model_use", "data_imputation"]
VARIANTS: list[Variant] = ["baseline", "semantic", "episodic", "full"]
EVIL = "<script>alert(1)</script>"
SVG_RE = re.compile(r"<svg\b.*?</svg>", re.S)


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    items, labels = load_demo(dimensions=DIMS)
    rubric = load_rubric("ml-notebook").subset(DIMS)
    return evaluate(
        Judge(rubric, model="fake:mimic", embedder="fake"),
        items,
        labels,
        folds=2,
        variants=VARIANTS,
        n_resamples=200,
        learning_curve=[5, 10],
        progress=None,
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


def test_judgements_fold_into_one_closed_table_per_dimension_and_variant(
    report: EvaluationReport, page: str
) -> None:
    groups = re.findall(r"<details class='group'[^>]*>", page)
    assert len(groups) == len(DIMS) * len(VARIANTS)
    assert not any("open" in g for g in groups)  # closed: the page is short until asked
    section = page[page.index("<section id='judgements'>") :]
    assert section.count("<tr class=") == len(report.judgements)
    for dim in DIMS:
        for variant in VARIANTS:
            n = sum(
                1
                for r in report.judgements
                if r.variant == variant and r.judgement.dimension == dim
            )
            assert f"{variant}</span> · {n} judgements · MAE " in section


def test_judgement_tables_share_the_row_cap(report: EvaluationReport) -> None:
    html = judgement_section(report, limit=len(DIMS) * len(VARIANTS) * 2)
    assert html.count("<tr class=") == len(DIMS) * len(VARIANTS) * 2
    assert "showing the first 2 of" in html
    assert judgement_section(report, limit=1).count("<tr class=") == len(DIMS) * len(VARIANTS)


# Rationales that repeat across items, so the fake reflection distils guidelines from them.
TEMPLATES = {
    1: "imputer fit on full data before split leakage",
    2: "mean imputation after split no check",
    3: "pipeline imputer fitted on training fold only",
}


@pytest.fixture(scope="module")
def learned() -> EvaluationReport:
    """A run whose aligned judges learn guidelines (the demo's rationales are all distinct)."""
    items, labels = [], []
    for g in range(8):
        for v in range(2):
            score = 1 + (g + v) % 3
            iid = f"g{g}-v{v}"
            items.append(Item(id=iid, output=f"{TEMPLATES[score]} notebook {g}", group=f"g{g}"))
            labels.append(
                Label(
                    item=iid,
                    dimension="data_imputation",
                    score=score,
                    rationale=f"Expert: {TEMPLATES[score]}. Cell {g} shows it.",
                )
            )
    rubric = load_rubric("ml-notebook").subset(["data_imputation"])
    return evaluate(
        Judge(rubric, model="fake:mimic", embedder="fake"),
        items,
        labels,
        folds=2,
        variants=["baseline", "semantic", "full"],
        n_resamples=100,
        progress=None,
    )


def test_every_aligned_fold_records_its_memory(report: EvaluationReport, page: str) -> None:
    assert {m.fold for m in report.memory} == {0, 1}
    assert {m.dimension for m in report.memory} == set(DIMS)
    assert all(m.n_episodes > 0 for m in report.memory)
    section = page[page.index("<section id='learned'>") : page.index("<section id='judgements'>")]
    assert "What the judge learned" in section
    assert section.count("<details class='fold'") == len(report.memory)
    assert section.count("<details class='fold' open>") == len(DIMS)  # first fold per dimension


def test_the_page_shows_what_each_fold_learned(learned: EvaluationReport) -> None:
    assert all(m.guidelines for m in learned.memory)
    page = render_html(learned)
    section = page[page.index("<section id='learned'>") : page.index("<section id='judgements'>")]
    for m in learned.memory:
        assert f"Fold {m.fold + 1}: {len(m.guidelines)} guideline" in section
        for g in m.guidelines:
            assert g.support == len(g.sources) > 0
            assert f'<td class="guideline">{esc(g.text)}</td>' in section
            assert f'title="distilled from {g.support} expert label(s)">{g.support}</td>' in section


def test_judgement_rows_show_the_guideline_texts_and_examples_they_saw(
    learned: EvaluationReport,
) -> None:
    page = render_html(learned)
    full = next(r for r in learned.judgements if r.variant == "full")
    assert full.judgement.guidelines and full.judgement.episodes
    texts = {(m.fold, g.id): g for m in learned.memory for g in m.guidelines}
    g = texts[(full.fold, full.judgement.guidelines[0])]
    row = _row_of(page, full)
    assert f"{esc(g.text)} <small class='support'>(support {g.support})</small>" in row
    examples = {e.id: e for e in learned.examples}
    assert set(full.judgement.episodes) <= set(examples)
    ex = examples[full.judgement.episodes[0]]
    assert (
        f"<span class='ex-item'>{esc(ex.item)}</span> · expert <strong>{ex.score:g}</strong> "
        f"“{esc(ex.rationale)}”" in row
    )
    # Texts are stored once in report.json: rows keep ids, the memory section has the texts.
    dumped = learned.model_dump(mode="json")
    rows = [r["judgement"] for r in dumped["judgements"] if r["variant"] == "full"]
    assert all(
        isinstance(gid, str) and gid.startswith("g-") for r in rows for gid in r["guidelines"]
    )
    assert all("text" not in e for e in dumped["examples"])  # not the rendered item either
    assert len(dumped["examples"]) == len({e for r in rows for e in r["episodes"]})


def _row_of(page: str, rec: JudgementRecord) -> str:
    """The row of ``rec`` inside its variant's table (one dimension in the report)."""
    section = page[page.index("<section id='judgements'>") :]
    group = section.index(f"<span class='variant v-{rec.variant}'>")
    start = section.index(f'<td class="item">{esc(rec.judgement.item)}</td>', group)
    assert start < section.index("</table></div></details>", group)
    return section[start : section.index("</tr>", start)]


def memory_report(**judgement: object) -> EvaluationReport:
    """The sparse report with one fold's memory, one example and one full judgement."""
    memory = FoldMemory(
        fold=1,
        dimension="model_use",
        n_episodes=7,
        guidelines=[
            LearnedGuideline(
                id="g-1",
                text="A model fitted on the test split is misuse: score 1.",
                support=3,
                sources=("nb3::model_use::expert", "nb4::model_use::expert", "nb5::model_use::a"),
            )
        ],
    )
    example = ShownExample(
        id="nb2::model_use::expert", item="nb2", dimension="model_use", rater="expert",
        score=2, rationale="Cell 5 refits the scaler on the test data. " + "y" * 400,
    )  # fmt: skip
    fields: dict[str, object] = {
        "item": "nb1", "dimension": "model_use", "score": 2, "rationale": "x" * 1000,
        "guidelines": ("g-1", "g-unknown"), "episodes": ("nb2::model_use::expert",),
    }  # fmt: skip
    fields.update(judgement)
    rec = JudgementRecord(
        variant="full",
        fold=1,
        expert=0.0,  # N/A on model_use
        judgement=Judgement.model_validate(fields),
    )
    return sparse_report().model_copy(
        update={"judgements": [rec], "memory": [memory], "examples": [example]}
    )


def test_judgement_rows_show_provenance() -> None:
    report = memory_report()
    table = judgement_section(report)
    assert "A model fitted on the test split is misuse: score 1." in table
    assert "(support 3)" in table
    assert "<code>g-unknown</code>" in table  # an id the report has no text for stays visible
    assert "<span class='ex-item'>nb2</span> · expert <strong>2</strong>" in table
    assert "“Cell 5 refits the scaler on the test data. " in table
    assert "y" * 117 + "…”" in table and "y" * 118 not in table  # excerpt: 160 characters
    assert "x" * 300 + "…" in table and "x" * 301 not in table
    assert ">N/A<" in table
    assert "<summary>2 guidelines · 1 example</summary>" in table
    assert ">2<" in table  # the fold, counted from 1 as in the notes


def test_learned_section_lists_guidelines_with_support_and_sources() -> None:
    html = learned_section(memory_report())
    assert "Fold 2: 1 guideline · 7 labelled examples to retrieve" in html
    assert "A model fitted on the test split is misuse: score 1." in html
    assert '<td class="num support" title="distilled from 3 expert label(s)">3</td>' in html
    assert ">nb3, nb4, nb5<" in html
    config = sparse_report().config.model_copy(update={"variants": ["baseline"]})
    only_baseline = sparse_report().model_copy(update={"config": config})
    assert "No aligned variant" in learned_section(only_baseline)
    assert "does not record" in learned_section(sparse_report())  # aligned, no memory: old file


def test_scores_and_errors_are_rounded() -> None:
    mean = 13 / 3  # three raters' mean
    rec = JudgementRecord(
        variant="baseline",
        fold=-1,
        expert=mean,
        judgement=Judgement(item="nb9", dimension="model_use", score=3.0, rationale="r"),
    )
    report = memory_report().model_copy(update={"judgements": [rec]})
    html = render_html(report)
    assert "4.333" not in html and "3.0<" not in html
    row = html[html.index('<td class="item">nb9</td>') :]
    cells = re.findall(r'<td class="num">([^<]*)</td>', row[: row.index("</tr>")])
    assert cells == ["—", "4.33", "3", "1.33"]  # fold, expert, judge, |error|
    for number in re.findall(r">(-?\d+\.\d+)<", html):
        assert len(number.split(".")[1]) <= 2, number


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
