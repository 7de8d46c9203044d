"""The bad-input corpus (judgealign.testing.bad_inputs), every case in-process.

Each case must exit 2 with one 'error:' line naming what to fix, no traceback, and leave
every stored file (judge file, judgements, run folder, the good inputs) byte for byte as it
was. ``bench/reliability.py`` runs the same corpus as real processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from judgealign.testing.bad_inputs import (
    BadInput,
    corpus,
    fingerprint,
    prepare,
    run_in_process,
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs")
    prepare(root)
    return root


def _cases() -> list[BadInput]:
    # The ids only: the files are written again under each test session's workspace.
    import tempfile

    return corpus(Path(tempfile.mkdtemp()) / "ids")


CASES = _cases()


def test_the_corpus_is_big_and_varied() -> None:
    assert len(CASES) >= 50
    kinds = {c.name.split("-")[0] for c in CASES}
    assert {"nb", "items", "labels", "rubric", "ratings", "judge", "flag"} <= kinds


@pytest.fixture(scope="module")
def cases(workspace: Path) -> dict[str, BadInput]:
    return {c.name: c for c in corpus(workspace)}


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_bad_input_is_one_line_exit_2_and_damages_nothing(
    workspace: Path, cases: dict[str, BadInput], name: str
) -> None:
    case = cases[name]
    before = fingerprint(workspace)
    outcome = run_in_process(case.argv)
    assert outcome.problems(case) == [], outcome.output
    assert fingerprint(workspace) == before, f"{name} changed a stored file"


def test_a_torn_judgements_file_is_still_resumed(workspace: Path, tmp_path: Path) -> None:
    stored = workspace / "stored" / "judgements.jsonl"
    out = tmp_path / "j.jsonl"
    out.write_bytes(stored.read_bytes() + b'{"schema_version": 1, "item": "x", "dim')
    argv = ["score", str(workspace / "nb"), "--rubric", "ml-notebook", "--model",
            "fake:lenient", "--dimension", "data_imputation", "--out", str(out),
            "--cache-dir", str(workspace / "cache")]  # fmt: skip
    assert run_in_process(argv).code == 0
    assert out.read_bytes().startswith(stored.read_bytes())
    assert all(line.startswith(b"{") for line in out.read_bytes().splitlines())
