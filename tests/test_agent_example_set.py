"""The shipped example data and replay notebooks equal a fresh seeded generation, and the two
synthetic versions differ the way the README says."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from judgealign.agent.adapters import ReplayAgent
from judgealign.agent.example_set import EXAMPLES_DIR, write_example_set
from judgealign.agent.suite import load_suite


def test_shipped_files_equal_a_fresh_generation(tmp_path: Path) -> None:
    write_example_set(tmp_path)
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    shipped_dirs = [EXAMPLES_DIR / "data", EXAMPLES_DIR / "replay"]
    shipped = sorted(
        p.relative_to(EXAMPLES_DIR) for d in shipped_dirs for p in d.rglob("*") if p.is_file()
    )
    assert fresh == shipped
    for rel in fresh:
        assert (tmp_path / rel).read_bytes() == (EXAMPLES_DIR / rel).read_bytes(), rel


def test_complete_tables_have_no_missing_values_and_the_others_do() -> None:
    for path in sorted((EXAMPLES_DIR / "data").glob("*.csv")):
        rows = list(csv.DictReader(path.open(encoding="utf-8")))
        assert 6 <= len(rows) <= 400, path.name
        missing = sum(1 for r in rows for v in r.values() if v == "")
        if path.stem.endswith("_complete") or "new" in path.stem or "active" in path.stem:
            assert missing == 0, path.name
        elif path.stem in ("customers", "flights", "houses", "monthly_sales"):
            assert missing > 0, path.name


def test_every_case_has_its_notebooks_in_both_versions() -> None:
    suite = load_suite("example")
    for version in ("v1", "v2"):
        agent = ReplayAgent(f"example/{version}")
        for case in suite.cases:
            for index in range(1, case.notebooks + 1):
                assert agent.notebook_for(case.id, index) is not None, (version, case.id)


def test_manifest_plants_na_on_complete_data_and_v2_fixes_imputation() -> None:
    manifest = json.loads((EXAMPLES_DIR / "replay" / "manifest.json").read_text())
    entries = manifest["notebooks"]
    for e in entries:
        complete = e["case"].endswith("-complete")
        assert (e["expert_scores"]["data_imputation"] == 0) == complete, e

    def mean(version: str, dim: str) -> float:
        scores = [
            e["expert_scores"][dim]
            for e in entries
            if e["version"] == version and e["expert_scores"][dim] > 0
        ]
        return sum(scores) / len(scores)

    assert mean("v2", "data_imputation") > mean("v1", "data_imputation")
    assert mean("v2", "model_training") > mean("v1", "model_training")
