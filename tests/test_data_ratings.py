"""The normalized human-ratings reader and its generated rubrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgealign.data.ratings import load_ratings, rubric_for_ratings
from judgealign.errors import DataError

RATINGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ratings"
FILES = [
    "conala_code_grades.jsonl",
    "lfqa_expert_pairwise.jsonl",
    "squality_humaneval.jsonl",
    "summeval_expert.jsonl",
    "topical_chat_usr.jsonl",
    "wmt21_ted_mqm_ende.jsonl",
]


def shared(name: str) -> Path:
    path = RATINGS / name
    if not path.is_file():
        pytest.skip(f"shared ratings file not found at {path}")
    return path


@pytest.mark.parametrize("name", FILES)
def test_each_shared_file_with_a_small_limit(name: str) -> None:
    ds = load_ratings(shared(name), limit=10, seed=0)
    assert len(ds.items) >= 10
    groups = {it.group_id for it in ds.items}
    # whole groups: the last group pushed the count over the limit, never more.
    assert len(groups) >= 1
    full = load_ratings(shared(name), limit=10, seed=0)
    assert [it.id for it in full.items] == [it.id for it in ds.items]
    assert {lb.dimension for lb in ds.labels} == set(ds.scales)
    for label in ds.labels:
        low, high = ds.scales[label.dimension]
        assert low <= label.score <= high and label.rater == "mean"
    assert all(isinstance(v, str) for it in ds.items for v in it.inputs.values())
    assert all(it.metadata["dataset"] == ds.name for it in ds.items)
    rubric = rubric_for_ratings(ds)
    assert rubric.dimension_ids == tuple(ds.scales)


def test_groups_are_never_split_by_limit() -> None:
    path = shared("summeval_expert.jsonl")
    ds = load_ratings(path, limit=20, seed=4)
    assert len(ds.items) == 32  # two articles of 16 summaries each
    assert len({it.group_id for it in ds.items}) == 2
    other = load_ratings(path, limit=20, seed=5)
    assert {it.group_id for it in other.items} != {it.group_id for it in ds.items}


def test_rater_labels_and_dimension_filter() -> None:
    ds = load_ratings(shared("squality_humaneval.jsonl"), limit=3, dimensions=["overall"])
    assert ds.dimensions == ["overall"]
    assert {lb.dimension for lb in ds.labels} == {"overall"}
    assert ds.rater_labels and {lb.rater for lb in ds.rater_labels} != {"mean"}
    assert any(lb.rationale for lb in ds.rater_labels)
    with pytest.raises(DataError, match="unknown dimension"):
        load_ratings(shared("squality_humaneval.jsonl"), dimensions=["nope"])


def test_mqm_penalties_are_lower_is_better_with_per_category_notes() -> None:
    ds = load_ratings(shared("wmt21_ted_mqm_ende.jsonl"), limit=50)
    rubric = rubric_for_ratings(ds)
    scale = rubric.dimension("accuracy_penalty").scale
    assert "best" in scale.anchors[0] and "worst" in scale.anchors[25]
    assert "lower is better" in rubric.dimension("accuracy_penalty").description
    assert scale.lower_is_better and scale.best == 0
    for label in ds.labels:
        if label.dimension == "accuracy_penalty" and label.rationale:
            assert "accuracy" in label.rationale.lower()


def test_generated_anchors_interpolate(tmp_path: Path) -> None:
    line = {
        "dataset": "toy",
        "item_id": "1",
        "group_id": "g",
        "system": "s",
        "input": {"dialogue": ["a", "b"]},
        "output": "o",
        "scores": {"quality": 4, "overall": 50},
        "scale": {"quality": [1, 5], "overall": [0, 100]},
    }
    path = tmp_path / "toy.jsonl"
    path.write_text(json.dumps(line) + "\n")
    ds = load_ratings(path)
    assert ds.items[0].inputs == {"dialogue": "a\nb"}
    rubric = rubric_for_ratings(ds)
    assert list(rubric.dimension("quality").scale.anchors) == [1, 2, 3, 4, 5]
    assert not rubric.dimension("quality").scale.lower_is_better
    assert sorted(rubric.dimension("overall").scale.anchors) == [0, 50, 100]


def test_malformed_ratings(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"item_id": "1"}\n')
    with pytest.raises(DataError, match=r"r\.jsonl:1: missing field\(s\) output, scores, scale"):
        load_ratings(path)
    with pytest.raises(DataError, match="not found"):
        load_ratings(tmp_path / "none.jsonl")


def test_per_group_spreads_a_limited_sample_over_more_groups(tmp_path: Path) -> None:
    lines = []
    for g in range(10):
        for s in range(6):
            lines.append(
                json.dumps(
                    {
                        "item_id": f"g{g}::s{s}",
                        "group_id": f"g{g}",
                        "output": f"text {g} {s}",
                        "scores": {"q": 1 + (g + s) % 5},
                        "scale": {"q": [1, 5]},
                    }
                )
            )
    path = tmp_path / "r.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole = load_ratings(path, limit=12, seed=1)
    assert len({it.group for it in whole.items}) == 2  # whole groups of 6
    spread = load_ratings(path, limit=12, seed=1, per_group=2)
    assert len(spread.items) == 12
    assert len({it.group for it in spread.items}) == 6
    assert load_ratings(path, limit=12, seed=1, per_group=2).items == spread.items  # seeded
    with pytest.raises(DataError, match="per_group"):
        load_ratings(path, per_group=0)
