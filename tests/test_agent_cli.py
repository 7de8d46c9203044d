"""``judgealign agent run / compare / report / example`` on the fake providers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent_fixtures import fit_judge, write_suite
from judgealign.cli.main import app

ENV = {"COLUMNS": "160"}


@pytest.fixture(scope="module")
def judge_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit_judge(tmp_path_factory.mktemp("judge") / "judge.json")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=ENV)
    return result.exit_code, result.output


def test_run_compare_and_report(judge_file: Path, tmp_path: Path) -> None:
    common = ["--cases", "example", "--judge", str(judge_file), "--cache-dir", str(tmp_path / "c")]
    picks = ["--case", "churn-missing", "--case", "churn-brief", "--case", "sales-complete"]
    for version in ("v1", "v2"):
        code, out = invoke(
            "agent", "run", *common, *picks,
            "--agent", f"replay:example/{version}", "--out", str(tmp_path / version),
        )  # fmt: skip
        assert code == 0, out
        assert f"agent {version} on suite example: 3 cases, 4 notebooks" in out
        assert "model_training" in out and "data_imputation" in out
        board = json.loads((tmp_path / version / "scoreboard.json").read_text())
        assert board["format"] == "judgealign.agent.scoreboard" and board["schema_version"] == 1
        assert (tmp_path / version / "report.html").is_file()
    code, out = invoke("agent", "compare", str(tmp_path / "v1"), str(tmp_path / "v2"))
    assert code == 0, out
    assert "v1 -> v2 on suite example: 3 cases compared" in out and "Holm p" in out
    target = tmp_path / "compare-v1-vs-v2"
    assert (target / "comparison.json").is_file()
    page = (target / "comparison.html").read_text()
    assert "href='../v1/report.html'" in page
    code, out = invoke("agent", "report", str(tmp_path / "v1"), "--write")
    assert code == 0 and "agent v1 on suite example" in out


def test_example_command_runs_both_versions_and_compares(judge_file: Path, tmp_path: Path) -> None:
    code, out = invoke(
        "agent", "example", "--judge", str(judge_file), "--out", str(tmp_path / "ex"),
        "--cache-dir", str(tmp_path / "c"),
    )  # fmt: skip
    assert code == 0, out
    assert "agent v1 on suite example: 6 cases, 6 notebooks" in out
    assert "v1 -> v2 on suite example: 6 cases compared" in out
    assert "synthetic" in out
    for part in ("v1/scoreboard.json", "v2/report.html", "comparison/comparison.html"):
        assert (tmp_path / "ex" / part).is_file()


def test_a_run_that_mostly_failed_exits_1(judge_file: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = invoke(
        "agent", "run", "--cases", "example", "--limit", "2", "--judge", str(judge_file),
        "--agent", f"replay:{empty}", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 1
    assert "2 of 2 notebooks failed (invalid)" in out and "not usable" in out


def test_bad_input_is_one_line_and_exit_2(judge_file: Path, tmp_path: Path) -> None:
    suite = write_suite(tmp_path, [{"id": "a", "task": "ranking"}])
    code, out = invoke(
        "agent", "run", "--cases", str(suite), "--judge", str(judge_file),
        "--agent", "replay:example/v1", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 2 and "field task" in out and "Traceback" not in out
    code, out = invoke("agent", "example", "--judge", str(tmp_path / "none.json"))
    assert code == 2 and "judge file not found" in out
    code, out = invoke(
        "agent", "run", "--cases", "example", "--judge", str(judge_file),
        "--agent", "telepathy:x", "--out", str(tmp_path / "run"),
    )  # fmt: skip
    assert code == 2 and "write cmd:" in out
