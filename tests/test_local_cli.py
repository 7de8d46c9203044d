"""The install path proven end to end: one real local-model judgement through the CLI.

Marked ``local_model`` (excluded by default); CI runs it after scripts/install-local.sh
with ``JUDGEALIGN_LOCAL_MODELS=fast`` so the smallest packaged model is enough.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from judgealign.cli.main import app
from judgealign.demo import demo_notebooks_dir


@pytest.mark.local_model
def test_one_notebook_one_dimension_with_the_local_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="install the local model: make test-local")
    notebook = sorted(demo_notebooks_dir().glob("*.ipynb"))[0]
    out = tmp_path / "judgements.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "score",
            str(notebook),
            "--rubric",
            "ml-notebook",
            "--dimension",
            "data_imputation",
            "--model",
            "local:fast",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1
    judgement = rows[0]
    assert judgement["error"] is None, judgement["raw"]
    assert judgement["score"] in (0, 1, 2, 3)
    assert judgement["rationale"].strip()
    assert judgement["usage"]["prompt_tokens"] > 200
    assert judgement["usage"]["completion_tokens"] > 0
