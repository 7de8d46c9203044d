"""The ``rubric`` sub-command: show, validate, list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from judgealign.cli.rubric_cmd import rubric_app
from judgealign.rubric import builtin_rubrics, load_rubric, rubric_from_dict, rubric_to_yaml


@pytest.fixture
def app() -> typer.Typer:
    # Mounted the same way cli/main.py mounts it.
    root = typer.Typer()
    root.add_typer(rubric_app, name="rubric")
    return root


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner(env={"COLUMNS": "120", "NO_COLOR": "1"})


def _assert_one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_list_prints_builtin_names(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "list"])
    assert result.exit_code == 0
    assert result.stdout.split() == builtin_rubrics()
    assert "ml-notebook" in result.stdout.split()


def test_show_text_lists_dimensions_anchors_and_na(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "show", "ml-notebook"])
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for dim_id in load_rubric("ml-notebook").dimension_ids:
        assert dim_id in out
    assert "Machine-learning notebook quality" in out
    assert "(N/A)" in out
    assert "level" in out
    assert "anchor" in out


def test_show_one_dimension(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "show", "ml-notebook", "--dimension", "model_use"])
    assert result.exit_code == 0, result.stderr
    assert "model_use" in result.stdout
    assert "data_imputation" not in result.stdout
    assert "0 (N/A)" in result.stdout


def test_show_wide_scale_without_na(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "show", "squality", "-d", "coverage"])
    assert result.exit_code == 0, result.stderr
    assert "scale 0-100" in result.stdout
    assert "N/A" not in result.stdout


def test_show_yaml_round_trips(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "show", "summeval", "--format", "yaml"])
    assert result.exit_code == 0, result.stderr
    rubric = rubric_from_dict(yaml.safe_load(result.stdout), source="stdout")
    assert rubric == load_rubric("summeval")


def test_show_json_of_one_dimension(app: typer.Typer, runner: CliRunner) -> None:
    args = ["rubric", "show", "topical-chat", "-d", "groundedness", "-f", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["id"] == "groundedness"
    assert (data["scale"]["min"], data["scale"]["max"]) == (0, 1)
    assert set(data["scale"]["anchors"]) == {"0", "1"}


def test_show_json_of_whole_rubric(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "show", "wmt-mqm", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert rubric_from_dict(data, source="stdout") == load_rubric("wmt-mqm")


def test_show_unknown_rubric_fails_cleanly(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "show", "no-such-rubric"])
    assert result.exit_code == 1
    line = _assert_one_line_error(result.stderr)
    assert "no-such-rubric" in line
    assert result.stdout == ""


def test_show_unknown_dimension_fails_cleanly(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "show", "conala", "--dimension", "speed"])
    assert result.exit_code == 1
    line = _assert_one_line_error(result.stderr)
    assert "'speed'" in line
    assert "usefulness" in line


def test_show_rejects_unknown_format(app: typer.Typer, runner: CliRunner) -> None:
    result = runner.invoke(app, ["rubric", "show", "conala", "--format", "xml"])
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_validate_ok_files(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    paths = []
    for name in ("ml-notebook", "lfqa"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(rubric_to_yaml(load_rubric(name)), encoding="utf-8")
        paths.append(path)
    result = runner.invoke(app, ["rubric", "validate", *map(str, paths)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"ok: {paths[0]} (9 dimensions)",
        f"ok: {paths[1]} (1 dimensions)",
    ]


def test_validate_bad_file_exits_1(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(rubric_to_yaml(load_rubric("conala")), encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(good.read_text(encoding="utf-8"))
    data["dimensions"][0]["scale"]["na_value"] = 2
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = runner.invoke(app, ["rubric", "validate", str(good), str(bad)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"ok: {good} (1 dimensions)"]
    line = _assert_one_line_error(result.stderr)
    assert str(bad) in line
    assert "na_value 2" in line


def test_validate_invalid_yaml_names_line(
    app: typer.Typer, runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "syntax.yaml"
    bad.write_text("id: x\ndimensions: [\n  a: : b\n", encoding="utf-8")
    result = runner.invoke(app, ["rubric", "validate", str(bad)])
    assert result.exit_code == 1
    line = _assert_one_line_error(result.stderr)
    assert str(bad) in line
    assert "line " in line


def test_validate_missing_file(app: typer.Typer, runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    result = runner.invoke(app, ["rubric", "validate", str(missing)])
    assert result.exit_code == 1
    line = _assert_one_line_error(result.stderr)
    assert "not found" in line
