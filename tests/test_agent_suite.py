"""Test-case suites: the shipped example, YAML and JSONL, and one-line errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_fixtures import write_suite
from judgealign.agent.suite import AgentSuite, load_suite
from judgealign.errors import DataError


def test_example_suite_covers_tasks_missing_values_and_several_notebooks() -> None:
    suite = load_suite("example")
    assert len(suite.cases) == 12
    assert {c.task for c in suite.cases} == {"classification", "regression", "forecasting"}
    tags = {t for c in suite.cases for t in c.tags}
    assert {"missing-values", "complete"} <= tags
    assert any(c.notebooks > 1 for c in suite.cases)
    for case in suite.cases:
        for path in suite.data_files(case):
            assert path.is_file() and path.stat().st_size > 0


def test_prompt_describes_the_data_the_agent_sees() -> None:
    suite = load_suite("example")
    case = suite.case("houses-missing")
    prompt = suite.prompt_for(case)
    assert prompt.startswith(case.prompt.strip())
    assert "data/houses.csv (300 rows x 8 columns" in prompt
    assert "First rows:" in prompt and "listing_id,area" in prompt


def test_select_keeps_suite_order_and_limit() -> None:
    suite = load_suite("example")
    picked = suite.select(["sales-brief", "churn-missing"])
    assert [c.id for c in picked.cases] == ["churn-missing", "sales-brief"]
    assert len(suite.select(limit=3).cases) == 3
    with pytest.raises(DataError, match="no case 'nope'"):
        suite.select(["nope"])


def test_digest_changes_with_the_data(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [{"id": "a"}])
    before = load_suite(path).digest()
    (tmp_path / "data" / "t.csv").write_text("a,b,y\n9,9,9\n", encoding="utf-8")
    assert load_suite(path).digest() != before


def test_jsonl_suite(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x\n1\n", encoding="utf-8")
    case = {"id": "j1", "prompt": "p", "task": "regression", "dataset": {"files": ["d.csv"]}}
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(case) + "\n\n", encoding="utf-8")
    suite = load_suite(path)
    assert isinstance(suite, AgentSuite) and suite.name == "s" and suite.cases[0].id == "j1"
    path.write_text(json.dumps(case) + "\n{broken\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.jsonl:2: not valid JSON"):
        load_suite(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ({"id": "bad id!"}, r"case 1 \(bad id!\): field id: String should match pattern"),
        ({"id": "a", "task": "ranking"}, r"field task: Input should be"),
        ({"id": "a", "dataset": {}}, r"field dataset: give files .* or a name"),
        ({"id": "a", "dataset": {"files": ["data/none.csv"]}}, r"dataset file data/none.csv not"),
        ({"id": "a", "dataset": {"files": ["../x.csv"]}}, r"must be a path relative to the suite"),
        ({"id": "a", "notebooks": 0}, r"field notebooks: Input should be greater than"),
        ({"id": "a", "dimensions": ["data_imputaton"]}, r"dimension 'data_imputaton' is not in"),
        ({"id": "a", "colour": "red"}, r"field colour: Extra inputs are not permitted"),
    ],
)
def test_bad_cases_are_one_line_errors_naming_file_and_case(
    tmp_path: Path, case: dict[str, object], message: str
) -> None:
    path = write_suite(tmp_path, [case])
    with pytest.raises(DataError, match=message) as err:
        load_suite(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_duplicate_ids_unknown_fields_and_bad_yaml(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [{"id": "a"}, {"id": "a"}])
    with pytest.raises(DataError, match="case 2: duplicate case id 'a'"):
        load_suite(path)
    path = write_suite(tmp_path, [{"id": "a"}], owner="me")
    with pytest.raises(DataError, match="unknown suite field"):
        load_suite(path)
    path.write_text("cases: [\n  - id: x\n", encoding="utf-8")
    with pytest.raises(DataError, match="is not valid YAML"):
        load_suite(path)
    with pytest.raises(DataError, match=r"a \.yaml or \.jsonl file"):
        load_suite(tmp_path / "suite.txt")


def test_defaults_apply_to_every_case(tmp_path: Path) -> None:
    path = write_suite(tmp_path, [{"id": "a"}, {"id": "b", "notebooks": 1}])
    text = path.read_text(encoding="utf-8") + "defaults:\n  notebooks: 3\n"
    path.write_text(text, encoding="utf-8")
    suite = load_suite(path)
    assert [c.notebooks for c in suite.cases] == [3, 1]
