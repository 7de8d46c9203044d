"""Shared builders for the agent tests: small aligned judge files made with the fake
providers, tiny suites with their data, and notebooks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

import judgealign as ja

DIMS = ("data_imputation", "model_training")


# A short first sentence per level: the fake reflection model turns a label's first sentence
# into a guideline, and a guideline that copies six words of a justification is dropped.
LEVELS = {0: "Not applicable here", 1: "A serious flaw", 2: "A lapse", 3: "Done well"}


def fit_judge(path: Path, dims: Sequence[str] = DIMS, model: str = "fake:mimic") -> Path:
    """An aligned judge file: the demo labels, fake model and embedder."""
    rubric = ja.load_rubric("ml-notebook").subset(list(dims))
    items, demo = ja.load_demo(dimensions=list(dims))
    labels = [
        lb.model_copy(update={"rationale": f"{LEVELS[int(lb.score)]}. {lb.rationale}"})
        for lb in demo
    ]
    judge = ja.Judge(rubric, model=model, embedder="fake")
    judge.fit(labels, items)
    ja.save_judge(judge, path)
    return path


def notebook_text(code: str = "import pandas as pd\ndf = pd.read_csv('data/t.csv')") -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Task"), nbformat.v4.new_code_cell(code)]
    return str(nbformat.writes(nb)) + "\n"


def write_suite(folder: Path, cases: Sequence[dict[str, Any]], **top: Any) -> Path:
    """A YAML suite with one small CSV beside it; cases default to classification on it."""
    import yaml

    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "t.csv").write_text("a,b,y\n1,2,0\n3,,1\n5,6,0\n", encoding="utf-8")
    full = []
    for c in cases:
        full.append(
            {
                "task": "classification",
                "prompt": f"Predict y for case {c['id']}.",
                "dataset": {"files": ["data/t.csv"]},
                **c,
            }
        )
    path = folder / "suite.yaml"
    path.write_text(
        yaml.safe_dump({"name": "tiny", "rubric": "ml-notebook", **top, "cases": full}),
        encoding="utf-8",
    )
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
