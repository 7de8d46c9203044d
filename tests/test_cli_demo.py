"""`judgealign demo` end to end on the fake provider (the real model runs in `make demo`)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from judgealign.cli.demo_cmd import DEMO_DIMENSIONS, DEMO_ITEMS, select_spread
from judgealign.cli.main import app
from judgealign.demo import load_demo


def test_demo_runs_prints_table_and_writes_reports_and_timings(tmp_path: Path) -> None:
    out = tmp_path / "run"
    timings = tmp_path / "demo.json"
    args = ["demo", "--model", "fake:mimic", "--embedder", "fake", "--out", str(out)]
    args += ["--cache-dir", str(tmp_path / "cache"), "--timings", str(timings)]
    result = CliRunner().invoke(app, [*args, "--install-seconds", "12"], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    for dim in DEMO_DIMENSIONS:
        assert dim in result.output
    assert "HTML report:" in result.output
    assert (out / "report.html").is_file() and (out / "report.json").is_file()
    body = json.loads(timings.read_text(encoding="utf-8"))
    assert body["items"] == DEMO_ITEMS and body["folds"] == 2
    assert body["install_seconds"] == 12 and body["demo_seconds"] > 0
    assert set(body["dimensions"]) == set(DEMO_DIMENSIONS)
    assert body["peak_rss_mb"] > 0
    assert any(k.startswith("full.") for k in body["mae"])
    # Rerunning answers from the run folder: the same results, nothing judged again.
    stored = (out / "judgements.jsonl").read_text(encoding="utf-8")
    again = CliRunner().invoke(app, args, env={"COLUMNS": "160"})
    assert again.exit_code == 0, again.output
    assert (out / "judgements.jsonl").read_text(encoding="utf-8") == stored
    assert json.loads(timings.read_text(encoding="utf-8"))["mae"] == body["mae"]


def test_demo_selection_spreads_over_base_notebooks() -> None:
    items, _ = load_demo(dimensions=list(DEMO_DIMENSIONS))
    chosen = select_spread(items, DEMO_ITEMS, seed=0)
    assert len(chosen) == DEMO_ITEMS
    assert len({it.group_id for it in chosen}) == len({it.group_id for it in items})
    assert [it.id for it in select_spread(items, DEMO_ITEMS, seed=0)] == [it.id for it in chosen]


def test_demo_rejects_unknown_dimension(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["demo", "--model", "fake:constant", "--dimension", "nope", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "nope" in result.output
