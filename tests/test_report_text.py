"""Console and Markdown renderers and MLflow logging, on a real (fake-provider) report."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from judgealign.demo import load_demo
from judgealign.errors import DataError
from judgealign.evaluation.experiment import evaluate
from judgealign.judge.judge import Judge
from judgealign.report.console import console_table, render_console
from judgealign.report.html import render_html
from judgealign.report.markdown import render_markdown, write_markdown
from judgealign.report.mlflow_log import write_predictions_csv
from judgealign.report.model import REPORT_SCHEMA_VERSION, EvaluationReport, Interval
from judgealign.report.table import fmt_interval, fmt_p, fmt_score, summary_rows
from judgealign.rubric import load_rubric

DIMS = ["model_use", "data_imputation"]


@pytest.fixture(scope="module")
def report() -> EvaluationReport:
    items, labels = load_demo(dimensions=DIMS)
    rubric = load_rubric("ml-notebook").subset(DIMS)
    return evaluate(
        Judge(rubric, model="fake:mimic", embedder="fake"),
        items,
        labels,
        folds=2,
        variants=["baseline", "semantic", "full"],
        n_resamples=300,
        name="unit",
        progress=None,
    )


def test_formatting_helpers() -> None:
    assert fmt_interval(None) == "—"
    assert fmt_interval(Interval(estimate=0.123, low=0.1, high=0.2)) == "0.12 [0.10, 0.20]"
    assert fmt_p(0.0001) == "<0.001"
    assert fmt_p(0.004) == "0.004"
    assert fmt_p(0.2) == "0.20"
    assert fmt_p(None) == "—"
    assert fmt_score(4.333333) == "4.33" and fmt_score(3.0) == "3" and fmt_score(2.5) == "2.50"
    assert fmt_score(0.0, na_value=0) == "N/A" and fmt_score(0.0) == "0"


def test_summary_rows_follow_rubric_and_variants(report: EvaluationReport) -> None:
    rows = summary_rows(report)
    assert [r.cells[1] for r in rows] == ["semantic", "full"] * len(DIMS)
    assert [r.cells[0] for r in rows] == ["model_use", "", "data_imputation", ""]
    for row in rows:
        cmp = report.comparison(row.cells[0] or "model_use", row.cells[1])
        assert cmp is not None
        assert row.cells[3] != "—" and row.cells[4] != "—"
    # The baseline column is over each row's paired items; every variant scored every item
    # here, so that is the baseline's own MAE on every row of a dimension.
    base = report.result("baseline", "model_use")
    assert base is not None
    assert rows[0].cells[3] == rows[1].cells[3] == fmt_interval(base.mae)
    assert rows[0].cells[2] == str(base.n_scored)


def test_console_table_shows_every_dimension_and_footer(report: EvaluationReport) -> None:
    buf = io.StringIO()
    render_console(report, Console(file=buf, width=220, color_system=None))
    text = buf.getvalue()
    for dim in DIMS:
        assert dim in text
    assert "Baseline MAE [CI]" in text and "p (Holm)" in text
    assert "leakage check: passed" in text
    assert "alignment:" in text and "scoring:" in text


@pytest.mark.parametrize(
    ("width", "shown", "hidden"),
    [
        (220, ["Calib. base", "Median pred.", "Baseline MAE [CI]", "p (Holm)"], []),
        (110, ["Baseline MAE [CI]", "Change", "p (Holm)"], ["Calib. base", "Bias"]),
        (80, ["Baseline MAE [CI]", "Aligned MAE [CI]", "p (Holm)"], ["Change", "Median pred."]),
    ],
)
def test_console_table_keeps_the_comparison_readable_when_narrow(
    report: EvaluationReport, width: int, shown: list[str], hidden: list[str]
) -> None:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None).print(console_table(report, width=width))
    lines = buf.getvalue().splitlines()
    assert all(len(ln.rstrip()) <= width for ln in lines)
    text = buf.getvalue()
    assert all(col in text for col in shown) and not any(col in text for col in hidden)
    assert "…" not in text  # nothing truncated


def test_console_warns_on_reference_scheme(report: EvaluationReport) -> None:
    cfg = report.config.model_copy(update={"draw_size": 100})
    buf = io.StringIO()
    render_console(report.model_copy(update={"config": cfg}), Console(file=buf, width=220))
    assert "WARNING" in buf.getvalue() and "100 draws" in buf.getvalue()


def test_markdown_tables_are_well_formed(report: EvaluationReport, tmp_path: Path) -> None:
    md = render_markdown(report)
    assert md.startswith("# unit: ml-notebook")
    table_lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    # Every row of a table has as many cells as its header.
    widths = {ln.count(" | ") for ln in table_lines if "---" not in ln}
    assert widths  # tables present
    assert "## Details per variant" in md
    path = write_markdown(report, tmp_path / "sub" / "report.md")
    assert path.read_text(encoding="utf-8") == md


def test_markdown_cells_escape_pipes_and_newlines() -> None:
    from judgealign.report.markdown import _table

    lines = _table(["a", "b"], [["x|y", "line\nbreak"]])
    assert lines[2] == "| x\\|y | line break |"
    assert all(ln.count(" | ") == 1 for ln in (lines[0], lines[2]))


def test_mlflow_logging_offline(
    report: EvaluationReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow", reason="MLflow logging needs the mlflow extra")
    from mlflow.tracking import MlflowClient

    from judgealign.report.mlflow_log import default_tracking_uri, log_to_mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "run"
    report.save(run_dir / "report.json")
    (run_dir / "judges").mkdir()
    (run_dir / "judges" / "fold-0.judge.json").write_text("{}", encoding="utf-8")
    run_id = log_to_mlflow(report, run_dir)
    client = MlflowClient(tracking_uri=default_tracking_uri(run_dir))
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model"] == "fake:mimic"
    assert run.data.params["folds"] == "2"
    m = run.data.metrics
    full = report.result("full", "model_use")
    assert full is not None and full.mae is not None
    assert m["full.model_use.mae"] == pytest.approx(full.mae.estimate)
    assert m["full.model_use.mae_low"] <= m["full.model_use.mae"] <= m["full.model_use.mae_high"]
    assert "full_vs_baseline.model_use.p_holm" in m
    arts = {a.path for a in client.list_artifacts(run_id)}
    assert {"report.json", "judgements.json", "judges"} <= arts
    # Artifacts live in the run folder, not the current directory.
    assert (run_dir / "mlartifacts").is_dir()
    # Every judgement as an MLflow table.
    table = client.load_table(run.info.experiment_id, "judgements.json", run_ids=[run_id])
    assert len(table) == len(report.judgements)
    assert set(table["variant"]) == {"baseline", "semantic", "full"}
    # The same report logged again updates its run (no duplicate, no doubled table).
    second = log_to_mlflow(report, run_dir, run_name="again")
    assert second == run_id
    assert len(client.search_runs([run.info.experiment_id])) == 1
    table = client.load_table(run.info.experiment_id, "judgements.json", run_ids=[run_id])
    assert len(table) == len(report.judgements)
    local = write_predictions_csv(report, tmp_path / "predictions.csv")
    with open(local, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(report.judgements)


def test_narrow_console_keeps_the_reference_levels_under_the_table(
    report: EvaluationReport,
) -> None:
    buf = io.StringIO()
    render_console(report, Console(file=buf, width=90, color_system=None))
    text = " ".join(buf.getvalue().split())
    for ref in report.references:
        # Below 100 columns each line starts with the rows' n (the table has no n column).
        assert re.search(rf"{ref.dimension}: n = \d+ semantic, \d+ full; median predictor", text)
    assert "calibrated baseline" in text and "human-human" in text
    wide = io.StringIO()
    render_console(report, Console(file=wide, width=220, color_system=None))
    assert "calibrated baseline" not in wide.getvalue()  # the columns carry them there
    assert "Calib. base" in wide.getvalue()


def test_every_report_carries_the_reference_levels(report: EvaluationReport) -> None:
    for ref in report.references:
        assert ref.median_predictor_mae is not None
        assert ref.calibrated_baseline_mae is not None  # the baseline ran: no call needed
    md = render_markdown(report)
    assert "Median pred." in md and "Calib. base" in md and "Human-human" in md
    assert "score blend" not in md and "score calibration" not in md


def old_report_json(report: EvaluationReport) -> dict[str, object]:
    """``report`` as a schema 1 file wrote it: score blends and calibrations, judgements
    with the expected and pre-blend scores, no memory section."""
    data = report.model_dump(mode="json")
    data["schema_version"] = 1
    del data["memory"], data["examples"]
    data["blends"] = [
        {"dimension": "model_use", "variant": "full", "n": 3, "judge_weights": [0.5],
         "neighbour_weights": [0.25], "median_weights": [0.25], "mae_blended": 0.4}
    ]  # fmt: skip
    data["calibrations"] = [
        {"dimension": "model_use", "variant": "full", "n": 3, "slopes": [1.0],
         "intercepts": [-0.5], "applied": [True], "mae_calibrated": 0.3, "mae_raw": 0.6}
    ]  # fmt: skip
    for rec in data["judgements"]:
        rec["judgement"] |= {"expected_score": 2.4, "judge_score": 3.0, "neighbour_score": 2.0}
    data["config"]["params"] |= {"blend": True, "recalibrate": False, "use_expected_score": True}
    return data


def test_a_schema_1_report_with_blends_and_calibrations_still_loads_and_renders(
    report: EvaluationReport, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps(old_report_json(report)), encoding="utf-8")
    old = EvaluationReport.load(path)
    assert old.schema_version == 1 and old.memory == [] and old.examples == []
    assert old.results == report.results and old.references == report.references
    assert len(old.judgements) == len(report.judgements)
    assert "blends" not in old.model_dump() and "calibrations" not in old.model_dump()
    html = render_html(old)
    assert "does not record the aligned judges" in html
    assert "score blend" not in render_markdown(old)
    render_console(old, Console(file=io.StringIO(), width=220))


def test_a_newer_report_schema_asks_for_an_upgrade(
    report: EvaluationReport, tmp_path: Path
) -> None:
    data = report.model_dump(mode="json")
    assert data["schema_version"] == REPORT_SCHEMA_VERSION == 3
    data["schema_version"] = REPORT_SCHEMA_VERSION + 1
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match="upgrade judgealign"):
        EvaluationReport.load(path)


def test_report_json_round_trips_with_the_memory_section(
    report: EvaluationReport, tmp_path: Path
) -> None:
    assert report.memory and report.examples
    again = EvaluationReport.load(report.save(tmp_path / "report.json"))
    assert again.memory == report.memory and again.examples == report.examples
    shown = {e for r in report.judgements for e in r.judgement.episodes}
    assert {e.id for e in report.examples} == shown  # each example once, only those shown


def test_predictions_csv_has_no_experimental_columns(
    report: EvaluationReport, tmp_path: Path
) -> None:
    path = write_predictions_csv(report, tmp_path / "predictions.csv")
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(report.judgements)
    assert "expected_score" not in rows[0] and {"score", "guidelines", "episodes"} <= set(rows[0])
