"""The shipped demo set: labels match the planted flaws, files are valid and regenerable."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import nbformat
import pytest

from judgealign.demo import (
    DEMO_RECIPES,
    MUTATIONS,
    compatible,
    demo_labels_path,
    demo_manifest_path,
    demo_notebooks_dir,
    generate_variants,
    load_demo,
    mutate,
    write_demo_set,
)
from judgealign.demo.expert import DIMENSIONS
from judgealign.errors import ConfigError, DataError

DEMO_DIMS = ("model_training", "model_use", "data_imputation")


def _labels() -> dict[tuple[str, str], dict[str, object]]:
    lines = demo_labels_path().read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    return {(r["item"], r["dimension"]): r for r in records}


def _manifest() -> dict[str, list[str]]:
    data = json.loads(demo_manifest_path().read_text(encoding="utf-8"))
    return {e["item"]: e["mutations"] for e in data["notebooks"]}


def _code(name: str) -> str:
    nb = nbformat.reads((demo_notebooks_dir() / name).read_text(encoding="utf-8"), as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_regeneration_equals_shipped_files(tmp_path: Path) -> None:
    write_demo_set(tmp_path)
    shipped = sorted(p.name for p in demo_notebooks_dir().glob("*.ipynb"))
    assert sorted(p.name for p in (tmp_path / "notebooks").glob("*.ipynb")) == shipped
    for name in shipped:
        fresh = (tmp_path / "notebooks" / name).read_text(encoding="utf-8")
        assert fresh == (demo_notebooks_dir() / name).read_text(encoding="utf-8"), name
    for name in ("labels.jsonl", "manifest.json"):
        fresh = (tmp_path / name).read_text(encoding="utf-8")
        assert fresh == (demo_labels_path().parent / name).read_text(encoding="utf-8"), name


def test_labels_match_planted_mutations() -> None:
    labels = _labels()
    manifest = _manifest()
    assert len(manifest) == len(DEMO_RECIPES) == 24
    for item, muts in manifest.items():
        assert tuple(muts) == DEMO_RECIPES[item.removesuffix(".ipynb")][1]
        planted = {MUTATIONS[m].dimension: MUTATIONS[m].score for m in muts}
        for dim, score in planted.items():
            assert labels[(item, dim)]["score"] == score, (item, dim)
        # Only the documented side effect may lower a dimension no mutation targets.
        for dim in set(DIMENSIONS) - set(planted):
            expected = 2 if dim == "mlflow_logging" and "metrics_on_training_set" in muts else 3
            assert labels[(item, dim)]["score"] == expected, (item, dim)
        rebuilt = mutate(item.rsplit("_", 1)[0], muts).labels()
        for dim, (score, why) in rebuilt.items():
            assert (labels[(item, dim)]["score"], labels[(item, dim)]["rationale"]) == (score, why)


def test_every_item_has_nine_labels_on_the_scale() -> None:
    labels = _labels()
    counts = Counter(item for item, _ in labels)
    assert set(counts.values()) == {9}
    for (_item, dim), record in labels.items():
        assert dim in DIMENSIONS
        assert record["score"] in (0, 1, 2, 3)
        assert record["rater"] == "expert"
        assert record["score"] != 0 or dim == "data_imputation"
        assert "cell" in str(record["rationale"]).lower() or dim == "mlflow_logging"


def test_label_spread() -> None:
    _items, labels = load_demo()
    by_dim: dict[str, Counter[float]] = {}
    for lb in labels:
        by_dim.setdefault(lb.dimension, Counter())[lb.score] += 1
    for dim in DIMENSIONS:
        assert {1.0, 2.0, 3.0} <= set(by_dim[dim]), dim
    for dim in DEMO_DIMS:
        graded = [by_dim[dim][s] for s in (1.0, 2.0, 3.0)]
        assert min(graded) >= 5, (dim, graded)
    assert by_dim["data_imputation"][0.0] >= 3


def test_structural_facts_behind_labels() -> None:
    labels = _labels()
    manifest = _manifest()
    for item, muts in manifest.items():
        code = _code(item)
        if "impute_before_split" in muts:
            fit = code.index(".fit_transform(df[")
            split = (
                code.index("train_test_split(")
                if "train_test_split(" in code
                else code.index("cut =")
            )
            assert fit < split, item
        if labels[(item, "mlflow_logging")]["score"] == 1:
            assert "mlflow" not in (demo_notebooks_dir() / item).read_text(encoding="utf-8")
        if labels[(item, "cell_organization")]["score"] == 1:
            nb = nbformat.reads((demo_notebooks_dir() / item).read_text(), as_version=4)
            assert sum(c.cell_type == "code" for c in nb.cells) <= 2
        if labels[(item, "model_use")]["score"] == 3:
            assert "joblib.load" in code and "new[" in code
        if "predict_on_train_only" in muts:
            assert "model.predict(X_train" in code
        if labels[(item, "model_training")]["score"] == 3:
            assert "GridSearchCV" in code and "baseline" in code
        if "tune_on_test_set" in muts:
            assert "pipe.predict(X_test)" in code or "pipe.predict_proba(X_test)" in code
        if "drop_all_missing_rows" in muts:
            assert "df.dropna()" in code
        if labels[(item, "data_imputation")]["score"] == 0:
            assert "SimpleImputer" not in code and "dropna" not in code
        if "metrics_on_training_set" in muts:
            assert "evaluate(model, X_train, y_train)" in code
        if "target_leak_feature" in muts:
            leak = {"flight": "arr_delay_min", "house": "price_per_sqft", "month": "units_3m",
                    "custo": "cancel_requested"}[item[:5]]  # fmt: skip
            assert leak in code.split("NUM, CAT =")[1].splitlines()[0]


def test_notebooks_are_valid_and_small() -> None:
    for path in sorted(demo_notebooks_dir().glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
        assert nb.nbformat == 4
        counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
        assert counts == list(range(1, len(counts) + 1))
        assert len(text) < 11_000, path.name
        rendered = "".join(c.source for c in nb.cells) + "".join(
            o.get("text", "") or o.get("data", {}).get("text/plain", "")
            for c in nb.cells
            for o in c.get("outputs", [])
        )
        assert len(rendered) < 4_500, (path.name, len(rendered))
        assert "mutation" not in text and "planted" not in text


def test_load_demo_items_and_groups() -> None:
    items, labels = load_demo(dimensions=list(DEMO_DIMS))
    assert len(items) == 24 and len(labels) == 24 * 3
    assert {it.kind for it in items} == {"notebook"}
    assert {it.group for it in items} == {"flight_delay", "house_prices", "monthly_sales",
                                          "customer_churn"}  # fmt: skip
    assert all(json.loads(it.output)["nbformat"] == 4 and it.inputs["task"] for it in items)
    assert {lb.item for lb in labels} == {it.id for it in items}
    with pytest.raises(DataError, match="no dimension"):
        load_demo(dimensions=["nonsense"])


def test_generate_variants_is_deterministic_and_consistent() -> None:
    first = generate_variants(7, 30)
    again = generate_variants(7, 30)
    assert [(v.base, v.mutations) for v in first] == [(v.base, v.mutations) for v in again]
    assert [v.notebook_json() for v in first[:5]] == [v.notebook_json() for v in again[:5]]
    assert [(v.base, v.mutations) for v in generate_variants(8, 30)] != [
        (v.base, v.mutations) for v in first
    ]
    assert {len(v.mutations) for v in first} <= {0, 1, 2, 3}
    for v in first:
        assert compatible(v.base, v.mutations)
        labels = v.labels()
        assert set(labels) == set(DIMENSIONS)
        for m in v.mutations:
            assert labels[MUTATIONS[m].dimension][0] == MUTATIONS[m].score, (v.base, v.mutations)


def test_mutation_apply_reports_changed_labels() -> None:
    from judgealign.demo import DemoNotebook

    nb, changed = MUTATIONS["metrics_on_training_set"].apply(DemoNotebook("house_prices"))
    assert changed["metrics_evaluation"][0] == 1
    assert changed["mlflow_logging"][0] == 2
    assert "cell 18" in changed["metrics_evaluation"][1].lower()
    assert nb.mutations == ("metrics_on_training_set",)


def test_incompatible_or_unknown_mutations_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="cannot be combined"):
        mutate("flight_delay", ["no_mlflow", "mlflow_metrics_only"])
    with pytest.raises(ConfigError, match="unknown"):
        mutate("flight_delay", ["no_such_flaw"])
    assert not compatible("flight_delay", ["shuffled_time_split"])
    assert not compatible("flight_delay", ["target_leak_feature"])


def test_the_shipped_aligned_judge_holds_every_demo_label_and_names_the_local_model() -> None:
    from judgealign.demo import load_demo, load_demo_judge
    from judgealign.demo.dataset import DEMO_JUDGE_COMMAND, demo_judge_path

    judge = load_demo_judge()
    assert judge.get_params()["model"] == "local:default"
    assert "--model local:default" in DEMO_JUDGE_COMMAND
    assert str(demo_judge_path().relative_to(demo_judge_path().parents[4])) in DEMO_JUDGE_COMMAND
    _, labels = load_demo()
    assert judge.memory_ is not None
    assert judge.memory_.label_ids() == {lb.id for lb in labels}
    for dim in judge.rubric.dimension_ids:
        assert len(judge.memory_.episodes(dim)) == 24
        assert judge.memory_.guidelines(dim), f"no guideline for {dim}"
