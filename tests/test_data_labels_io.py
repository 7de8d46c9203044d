"""Reading, writing and validating labels (JSONL and CSV)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.data.labels_io import read_labels, validate_labels, write_labels
from judgealign.errors import DataError
from judgealign.rubric.loader import rubric_from_dict
from judgealign.rubric.model import Rubric


def rubric() -> Rubric:
    scale = {"min": 1, "max": 3, "anchors": {1: "bad", 2: "ok", 3: "good"}, "na_value": 0}
    dims = [{"id": d, "name": d, "description": d, "scale": scale} for d in ("clarity", "metrics")]
    return rubric_from_dict({"id": "r", "name": "R", "dimensions": dims}, source="test")


LABELS = [
    Label(item="nb/a.ipynb", dimension="clarity", score=2, rationale='Says "fine", ok\nline 2'),
    Label(item="nb/a.ipynb", dimension="metrics", score=0, rationale="no metrics", rater="bo"),
    Label(item="b", dimension="clarity", score=2.5, rationale="", rater="mean"),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "sub" / f"labels{suffix}"
    write_labels(path, LABELS)
    assert read_labels(path) == LABELS
    assert read_labels(path, rubric()) == LABELS


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_defaults_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text('\n{"item": "a", "dimension": "clarity", "score": "3"}\n\n')
    (label,) = read_labels(path)
    assert (label.rater, label.rationale, label.score) == ("expert", "", 3.0)


def test_na_word_maps_to_na_value(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text("item,dimension,score\na,metrics,N/A\n")
    assert read_labels(path, rubric())[0].score == 0


def test_csv_multiline_rationale_reports_record_start(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(
        'item,dimension,score,rationale\na,clarity,2,"one, two\nthree"\n\nb,clarity,x,\n'
    )
    with pytest.raises(DataError, match=r"l\.csv:5: score 'x' is not a number"):
        read_labels(path)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"item": "a", "dimension": "style", "score": 2}],
            r"l\.jsonl:1: unknown dimension 'style' for rubric 'r'; use one of clarity, metrics",
        ),
        (
            [{"item": "a", "dimension": "clarity", "score": 7}],
            r"l\.jsonl:1: score 7\.0 is off the scale 1-3 or 0 \(N/A\); fix the score",
        ),
        ([{"item": "a", "dimension": "clarity"}], r"l\.jsonl:1: missing 'score'"),
        ([{"item": "a", "dimension": "clarity", "score": None}], r"l\.jsonl:1: missing score"),
        ([{"item": "a", "dimension": "clarity", "score": "good"}], "'good' is not a number"),
        ([{"item": "a", "dimension": "clarity", "score": True}], "True is not a number"),
        ([{"dimension": "clarity", "score": 1}], r"l\.jsonl:1: missing 'item'"),
        ([{"item": "a", "dimension": "clarity", "score": 1}, [1]], r"l\.jsonl:2: expected a JSON"),
        (
            [
                {"item": "a", "dimension": "clarity", "score": 1},
                {"item": "a", "dimension": "clarity", "score": 2},
            ],
            r"l\.jsonl:2: duplicate label for item 'a', dimension 'clarity', rater 'expert' "
            r"\(first on line 1\); keep one",
        ),
    ],
)
def test_label_errors(tmp_path: Path, rows: list[object], message: str) -> None:
    path = write_jsonl(tmp_path / "l.jsonl", rows)
    with pytest.raises(DataError, match=message):
        read_labels(path, rubric())


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_labels(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match=r"use a \.jsonl or \.csv file"):
        read_labels(tmp_path / "labels.txt")
    (tmp_path / "l.csv").write_text("item,score\na,1\n")
    with pytest.raises(DataError, match=r"l\.csv:1: missing column\(s\) dimension"):
        read_labels(tmp_path / "l.csv")
    (tmp_path / "l.jsonl").write_text("{bad\n")
    with pytest.raises(DataError, match=r"l\.jsonl:1: not valid JSON"):
        read_labels(tmp_path / "l.jsonl")


def test_validate_labels_resolves_items_and_checks_rubric() -> None:
    items = [
        Item(id="nb/a.ipynb", kind="notebook", output="{}", path="data/nb/a.ipynb"),
        Item(id="b", output="text"),
    ]
    by_stem = [Label(item="a", dimension="clarity", score=2)]
    assert validate_labels(by_stem, rubric(), items)[0].item == "nb/a.ipynb"
    assert validate_labels(LABELS[:2], rubric(), items) == LABELS[:2]
    with pytest.raises(DataError, match="unknown item 'zzz'"):
        validate_labels([Label(item="zzz", dimension="clarity", score=2)], rubric(), items)
    with pytest.raises(DataError, match="off the scale"):
        validate_labels([Label(item="b", dimension="clarity", score=9)], rubric())
    with pytest.raises(DataError, match="unknown dimension"):
        validate_labels([Label(item="b", dimension="zz", score=1)], rubric())
    with pytest.raises(DataError, match="duplicate label"):
        validate_labels([by_stem[0], by_stem[0]], rubric())
