"""A bad ratings file is caught at load, naming file and line, before any run folder exists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from judgealign.cli.main import app
from judgealign.data.ratings import load_ratings
from judgealign.errors import DataError
from judgealign.rubric import load_rubric


def record(n: int, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "dataset": "toy",
        "item_id": f"i{n}",
        "group_id": f"g{n // 2}",
        "input": {"source": f"source text {n}"},
        "output": f"output text {n}",
        "scores": {"coherence": 1 + n % 5, "fluency": 3.5},
        "scale": {"coherence": [1, 5], "fluency": [1, 5]},
        "rater_scores": [{"rater": "r1", "scores": {"coherence": 1 + n % 5}}],
    }
    base.update(over)
    return base


def write(tmp_path: Path, bad_line: str | dict[str, Any], at: int = 3) -> Path:
    rows = [json.dumps(record(n)) for n in range(6)]
    rows[at - 1] = bad_line if isinstance(bad_line, str) else json.dumps(bad_line)
    path = tmp_path / "ratings.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


BAD = {
    "off-scale": (record(2, scores={"coherence": 7}), "score of 'coherence' is 7, outside"),
    "below-scale": (record(2, scores={"coherence": 0.5}), "outside its scale 1-5"),
    "rater off-scale": (
        record(2, rater_scores=[{"rater": "r9", "scores": {"coherence": 9}}]),
        "rater r9: score of 'coherence' is 9",
    ),
    "string score": (record(2, scores={"coherence": "high"}), "is not a number: 'high'"),
    "bool score": (record(2, scores={"coherence": True}), "is not a number: True"),
    "nan score": (
        '{"item_id": "x", "output": "o", "scores": {"coherence": NaN}, '
        '"scale": {"coherence": [1, 5], "fluency": [1, 5]}}',
        "not a number: nan",
    ),
    "undeclared dimension": (
        record(2, scores={"coherense": 3}),
        "score for 'coherense', which the file's scale does not declare",
    ),
    "second scale": (
        record(2, scale={"coherence": [0, 10], "fluency": [1, 5]}),
        "one scale per dimension",
    ),
    "scores not an object": (record(2, scores=[3, 4]), "'scores' must be an object"),
    "scale not an object": (record(2, scale="1-5"), "'scale' must be an object"),
    "inverted scale": (record(2, scale={"coherence": [5, 1]}), "min < max"),
    "input not an object": (record(2, input="text"), "'input' must be an object"),
    "rater_scores not a list": (record(2, rater_scores={"r1": 3}), "'rater_scores' must be"),
    "empty item id": (record(2, item_id=""), "'item_id' must be a non-empty"),
    "missing field": ('{"item_id": "x", "scores": {}, "scale": {}}', "missing field(s) output"),
    "truncated line": ('{"item_id": "x", "output": ', "not valid JSON"),
    "duplicate id": (record(0), "duplicate item_id 'i0'"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_ratings_name_file_and_line(tmp_path: Path, case: str) -> None:
    line, message = BAD[case]
    path = write(tmp_path, line)
    with pytest.raises(DataError) as err:
        load_ratings(path, limit=2)  # the whole file is checked, not just the items kept
    text = str(err.value)
    assert f"{path}:3" in text and message in text and "\n" not in text


def test_a_rubric_given_with_the_file_checks_its_scale_too(tmp_path: Path) -> None:
    path = write(tmp_path, record(2, scores={"coherence": 5}))
    rubric = load_rubric("summeval")
    assert load_ratings(path, rubric=rubric).scales["coherence"] == (1, 5)
    narrow = rubric.model_copy(
        update={
            "dimensions": tuple(
                d.model_copy(
                    update={
                        "scale": d.scale.model_copy(
                            update={"max": 3, "anchors": {1: "a", 2: "b", 3: "c"}}
                        )
                    }
                )
                for d in rubric.dimensions
            )
        }
    )
    with pytest.raises(
        DataError, match=r"jsonl:1: .*rubric .summeval.: score 3.5 is off the scale 1-3"
    ):
        load_ratings(path, rubric=narrow)
    with pytest.raises(DataError, match="not in rubric 'ml-notebook'"):
        load_ratings(path, rubric=load_rubric("ml-notebook"))


def test_evaluate_refuses_an_off_scale_rating_before_the_run_folder_exists(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, record(2, scores={"coherence": 7}))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--ratings", str(path), "--model", "fake:mimic", "--embedder", "fake",
         "--out", str(out), "--cache-dir", str(tmp_path / "cache")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert f"{path}:3" in result.output and "outside its scale 1-5" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
