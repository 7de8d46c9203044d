"""Built-in rubrics, rubric validation errors and the YAML round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from judgealign.errors import ConfigError
from judgealign.rubric import Rubric, builtin_rubrics, load_rubric, rubric_to_yaml
from judgealign.rubric.model import RUBRIC_SCHEMA_VERSION

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
RATINGS = SHARED / "data" / "ratings"

EXPECTED_BUILTINS = {
    "ml-notebook",
    "summeval",
    "topical-chat",
    "squality",
    "conala",
    "wmt-mqm",
    "lfqa",
}

NOTEBOOK_IDS = (
    "library_installation",
    "exploratory_data_analysis",
    "data_imputation",
    "feature_engineering",
    "model_training",
    "model_use",
    "metrics_evaluation",
    "mlflow_logging",
    "cell_organization",
)

# Which built-in rubric describes which shared ratings file.
DATASET_RUBRICS = {
    "summeval_expert.jsonl": "summeval",
    "topical_chat_usr.jsonl": "topical-chat",
    "squality_humaneval.jsonl": "squality",
    "conala_code_grades.jsonl": "conala",
    "wmt21_ted_mqm_ende.jsonl": "wmt-mqm",
    "lfqa_expert_pairwise.jsonl": "lfqa",
}


def test_builtin_names_include_all_shipped_rubrics() -> None:
    assert set(builtin_rubrics()) >= EXPECTED_BUILTINS


@pytest.mark.parametrize("name", sorted(EXPECTED_BUILTINS))
def test_builtin_loads_with_documented_dimensions(name: str) -> None:
    rubric = load_rubric(name)
    assert rubric.id == name
    assert rubric.schema_version == RUBRIC_SCHEMA_VERSION
    assert rubric.item_kind in {"text", "notebook"}
    for dim in rubric.dimensions:
        assert dim.description.strip(), f"{name}.{dim.id} has no description"
        assert dim.guidance.strip(), f"{name}.{dim.id} has no guidance"
        assert dim.scale.min in dim.scale.anchors
        assert dim.scale.max in dim.scale.anchors


def test_ml_notebook_has_the_nine_dimensions_in_order() -> None:
    rubric = load_rubric("ml-notebook")
    assert rubric.item_kind == "notebook"
    assert rubric.dimension_ids == NOTEBOOK_IDS
    for dim in rubric.dimensions:
        scale = dim.scale
        assert (scale.min, scale.max) == (1, 3)
        assert sorted(scale.anchors) == [1, 2, 3]
        assert all(len(text) > 40 for text in scale.anchors.values()), dim.id
        assert scale.na_value == 0
        assert scale.na_description != "not applicable", f"{dim.id} needs its own N/A rule"
        assert scale.is_na(0)


def test_ml_notebook_imputation_penalizes_leakage() -> None:
    dim = load_rubric("ml-notebook").dimension("data_imputation")
    assert "leakage" in dim.scale.anchors[1]
    assert "training data only" in dim.scale.anchors[3]
    assert "no missing values" in dim.scale.na_description


@pytest.mark.parametrize(("filename", "name"), sorted(DATASET_RUBRICS.items()))
def test_dataset_rubric_matches_shared_ratings(filename: str, name: str) -> None:
    path = RATINGS / filename
    if not path.is_file():
        pytest.skip(f"shared ratings file {path} is absent (needs ../shared next to the repo)")
    with path.open(encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    rubric = load_rubric(name)
    assert rubric.item_kind == "text"
    assert list(rubric.dimension_ids) == list(first["scores"])
    for dim_id, (lo, hi) in first["scale"].items():
        scale = rubric.dimension(dim_id).scale
        assert (scale.min, scale.max) == (lo, hi)


@pytest.mark.parametrize("name", sorted(EXPECTED_BUILTINS))
def test_round_trip_through_yaml(name: str, tmp_path: Path) -> None:
    original = load_rubric(name)
    path = tmp_path / f"{name}.yaml"
    path.write_text(rubric_to_yaml(original), encoding="utf-8")
    again = load_rubric(path)
    assert again == original
    assert isinstance(again, Rubric)


def _valid_rubric() -> dict[str, object]:
    return {
        "schema_version": 1,
        "id": "tiny",
        "name": "Tiny",
        "dimensions": [
            {
                "id": "clarity",
                "name": "Clarity",
                "description": "How clear it is.",
                "scale": {
                    "min": 1,
                    "max": 3,
                    "anchors": {1: "unclear", 2: "mostly clear", 3: "clear"},
                    "na_value": 0,
                },
            }
        ],
    }


def _scale(data: dict[str, object]) -> dict[str, object]:
    dims = data["dimensions"]
    assert isinstance(dims, list)
    scale = dims[0]["scale"]
    assert isinstance(scale, dict)
    return scale


def _write(tmp_path: Path, data: object, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_rubric(path)
    message = str(info.value)
    assert "\n" not in message, "errors must be one line"
    assert str(path) in message, "errors must name the file"
    return message


def test_valid_rubric_file_loads(tmp_path: Path) -> None:
    rubric = load_rubric(_write(tmp_path, _valid_rubric(), "ok.yaml"))
    assert rubric.dimension_ids == ("clarity",)
    assert rubric.dimension("clarity").scale.anchors[2] == "mostly clear"


def test_missing_anchor_names_the_scale_and_level(tmp_path: Path) -> None:
    data = _valid_rubric()
    _scale(data)["anchors"] = {1: "unclear", 3: "clear"}
    message = _load_error(_write(tmp_path, data))
    assert "dimensions.0.scale" in message
    assert "anchors missing for levels [2]" in message


def test_na_value_inside_scale_is_rejected(tmp_path: Path) -> None:
    data = _valid_rubric()
    _scale(data)["na_value"] = 2
    message = _load_error(_write(tmp_path, data))
    assert "dimensions.0.scale" in message
    assert "na_value 2" in message


def test_max_not_above_min_is_rejected(tmp_path: Path) -> None:
    data = _valid_rubric()
    _scale(data).update({"min": 3, "max": 3, "anchors": {3: "only"}, "na_value": None})
    message = _load_error(_write(tmp_path, data))
    assert "dimensions.0.scale" in message
    assert "max (3) must be greater than min (3)" in message


def test_duplicate_dimension_ids_are_rejected(tmp_path: Path) -> None:
    data = _valid_rubric()
    dims = data["dimensions"]
    assert isinstance(dims, list)
    dims.append(dict(dims[0]))
    message = _load_error(_write(tmp_path, data))
    assert "duplicate dimension ids" in message
    assert "clarity" in message


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    data = _valid_rubric()
    dims = data["dimensions"]
    assert isinstance(dims, list)
    del dims[0]["description"]
    message = _load_error(_write(tmp_path, data))
    assert "dimensions.0.description" in message


def test_invalid_dimension_id_is_rejected(tmp_path: Path) -> None:
    data = _valid_rubric()
    dims = data["dimensions"]
    assert isinstance(dims, list)
    dims[0]["id"] = "Bad Id"
    message = _load_error(_write(tmp_path, data))
    assert "dimensions.0.id" in message


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\nname: X\ndimensions: [\n  - id: a\n  bad: : :\n", encoding="utf-8")
    message = _load_error(path)
    assert "not valid YAML" in message
    assert "line " in message
    line = int(message.split("line ")[1].split()[0])
    assert 3 <= line <= 6


def test_non_mapping_rubric_is_rejected(tmp_path: Path) -> None:
    message = _load_error(_write(tmp_path, ["just", "a", "list"]))
    assert "mapping" in message


def test_newer_schema_version_asks_for_upgrade(tmp_path: Path) -> None:
    data = _valid_rubric()
    data["schema_version"] = RUBRIC_SCHEMA_VERSION + 1
    message = _load_error(_write(tmp_path, data))
    assert f"schema_version {RUBRIC_SCHEMA_VERSION + 1}" in message
    assert "upgrade" in message


def test_missing_file_and_unknown_builtin_are_config_errors(tmp_path: Path) -> None:
    _load_error(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match=r"unknown rubric 'no-such-rubric'.*ml-notebook"):
        load_rubric("no-such-rubric")


def test_unknown_dimension_lookup_names_rubric_and_known_ids() -> None:
    rubric = load_rubric("summeval")
    with pytest.raises(ConfigError) as info:
        rubric.dimension("nope")
    message = str(info.value)
    assert "'nope'" in message
    assert "'summeval'" in message
    assert "coherence, consistency, fluency, relevance" in message
    assert "\n" not in message
