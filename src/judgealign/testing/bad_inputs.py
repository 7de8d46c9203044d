"""A corpus of bad inputs: real malformed files and flags, each a command that must stop.

Every case is a ``judgealign`` command line over a workspace of good files (notebooks,
labels, a ratings file, a rubric) and stored results (a judge file, a judgements file, an
evaluation run folder) made by the real commands with the fake providers. A case passes when
the command exits 2 with exactly one ``error:`` line that names what to fix (the file, when
a file is at fault), no traceback, and every stored file unchanged. ``bench/reliability.py``
runs the corpus as real processes; the tests run it in-process (``run_in_process``).

>>> import tempfile
>>> cases = corpus(Path(tempfile.mkdtemp()))
>>> len(cases) >= 50 and len({c.name for c in cases}) == len(cases)
True
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from judgealign.demo import demo_labels_path, demo_notebooks_dir

NOTEBOOKS = (
    "customer_churn_01.ipynb",
    "customer_churn_02.ipynb",
    "flight_delay_01.ipynb",
    "flight_delay_02.ipynb",
)
DIMENSIONS = ("data_imputation", "model_training")
FAKE = ("--model", "fake:lenient")
ALIGNED = ("--model", "fake:mimic", "--embedder", "fake")


@dataclass(frozen=True)
class BadInput:
    """One bad input: the command (``argv`` after ``judgealign``) and text its error names."""

    name: str
    argv: tuple[str, ...]
    names: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a case did: exit code and the command's output (stdout and stderr)."""

    code: int
    output: str

    def problems(self, case: BadInput) -> list[str]:
        """Why this outcome is not a clean refusal (empty: it is)."""
        lines = [ln for ln in self.output.splitlines() if ln.strip()]
        out = []
        if self.code != 2:
            out.append(f"exit code {self.code}, not 2")
        if "Traceback" in self.output or "╭" in self.output:
            out.append("a traceback or a framed box")
        if len(lines) != 1 or not lines[0].startswith("error: "):
            out.append(f"{len(lines)} lines, not one 'error:' line")
        if case.names and case.names not in self.output:
            out.append(f"does not name {case.names!r}")
        return out


Runner = Callable[[Sequence[str]], Outcome]


def run_in_process(argv: Sequence[str]) -> Outcome:
    """Run ``judgealign argv`` in this process (typer's test runner): fast, for tests."""
    from typer.testing import CliRunner

    from judgealign.cli.main import app

    result = CliRunner().invoke(app, list(argv), env={"COLUMNS": "200", "NO_COLOR": "1"})
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        output += "\nTraceback (in-process): " + repr(result.exception)
    return Outcome(result.exit_code, output)


def run_subprocess(argv: Sequence[str], *, cwd: Path | None = None) -> Outcome:
    """Run ``python -m judgealign argv`` as its own process: what a user's shell does."""
    env = {"COLUMNS": "200", "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    import os

    env = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, "-m", "judgealign", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Outcome(done.returncode, done.stdout + done.stderr)


def fingerprint(folder: Path, *, skip: tuple[str, ...] = ("cache",)) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` (relative path -> digest), but for the
    top-level folders in ``skip`` (the response cache may gain entries)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] not in skip
    }


def prepare(root: Path, run: Runner = run_in_process) -> Path:
    """Write the good workspace under ``root`` and make the stored results with the real
    commands (fake providers); returns the folder of stored results."""
    root.mkdir(parents=True, exist_ok=True)
    nb = root / "nb"
    nb.mkdir(exist_ok=True)
    for name in NOTEBOOKS:
        shutil.copy(demo_notebooks_dir() / name, nb / name)
    labels = [
        json.loads(line)
        for line in demo_labels_path().read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    keep = [lb for lb in labels if lb["item"] in NOTEBOOKS and lb["dimension"] in DIMENSIONS]
    (root / "labels.jsonl").write_text(
        "".join(json.dumps(lb) + "\n" for lb in keep), encoding="utf-8"
    )
    (root / "items.jsonl").write_text(
        "".join(
            json.dumps({"id": f"t{i}", "output": f"a short text {i}", "group": f"g{i // 2}"}) + "\n"
            for i in range(6)
        ),
        encoding="utf-8",
    )
    (root / "ratings.jsonl").write_text(
        "".join(json.dumps(_rating(i)) + "\n" for i in range(8)), encoding="utf-8"
    )
    stored = root / "stored"
    stored.mkdir(exist_ok=True)
    cache = str(root / "cache")
    dims = [a for d in DIMENSIONS for a in ("--dimension", d)]
    steps = [
        ["align", "--rubric", "ml-notebook", "--labels", str(root / "labels.jsonl"),
         "--items", str(nb), "--out", str(stored / "judge.json"), *ALIGNED, *dims,
         "--cache-dir", cache],
        ["score", str(nb), "--rubric", "ml-notebook", *FAKE, *dims,
         "--out", str(stored / "judgements.jsonl"), "--cache-dir", cache],
        ["evaluate", "--rubric", "ml-notebook", "--items", str(nb), "--labels",
         str(root / "labels.jsonl"), *ALIGNED, *dims, "--folds", "2", "--variants", "full",
         "--resamples", "200", "--out", str(stored / "run"), "--cache-dir", cache],
    ]  # fmt: skip
    for argv in steps:
        outcome = run(argv)
        if outcome.code != 0:
            raise RuntimeError(f"setting up the workspace failed: {argv}\n{outcome.output}")
    return stored


def _rating(i: int, **over: object) -> dict[str, object]:
    record: dict[str, object] = {
        "dataset": "toy",
        "item_id": f"r{i}",
        "group_id": f"g{i // 2}",
        "input": {"source": f"the source text {i}"},
        "output": f"a summary {i}",
        "scores": {"coherence": 1 + i % 5},
        "scale": {"coherence": [1, 5]},
    }
    record.update(over)
    return record


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def corpus(root: Path) -> list[BadInput]:
    """Write the bad files under ``root/bad`` and return every case (``prepare`` writes the
    good workspace and stored results the cases also use)."""
    bad = root / "bad"
    nb, labels, stored = root / "nb", root / "labels.jsonl", root / "stored"
    cache = ("--cache-dir", str(root / "cache"))
    good_nb = (demo_notebooks_dir() / NOTEBOOKS[0]).read_text(encoding="utf-8")
    good_labels = [
        json.dumps(
            {"item": NOTEBOOKS[0], "dimension": "data_imputation", "score": 2, "rationale": "ok"}
        )
    ]
    cases: list[BadInput] = []

    def add(name: str, argv: Sequence[str], names: str = "") -> None:
        cases.append(BadInput(name, tuple(argv), names))

    def score(
        path: Path | str,
        *more: str,
        out: Path = stored / "judgements.jsonl",
        rubric: str = "ml-notebook",
        model: str = "fake:lenient",
        cache_dir: Path = root / "cache",
    ) -> list[str]:
        return ["score", str(path), "--rubric", rubric, "--model", model, "--out", str(out),
                "--cache-dir", str(cache_dir), *more]  # fmt: skip

    def align(labels_file: Path, *more: str, out: Path = stored / "judge.json") -> list[str]:
        return ["align", "--rubric", "ml-notebook", "--labels", str(labels_file), "--items",
                str(nb), "--out", str(out), *ALIGNED, *cache, *more]  # fmt: skip

    def evaluate(*more: str, out: Path = stored / "run") -> list[str]:
        return ["evaluate", *ALIGNED, "--folds", "2", "--variants", "full", "--resamples",
                "200", "--out", str(out), *cache, *more]  # fmt: skip

    def with_labels(labels_file: Path, *more: str, out: Path = stored / "run") -> list[str]:
        return evaluate("--rubric", "ml-notebook", "--items", str(nb), "--labels",
                        str(labels_file), *more, out=out)  # fmt: skip

    # -- items: notebooks ------------------------------------------------------------------
    notebooks: dict[str, bytes | str] = {
        "nb-not-utf8": b'{"nbformat": 4, "cells": [], "x": "\xff\xfe"}',
        "nb-truncated": good_nb[: len(good_nb) // 2],
        "nb-empty": b"",
        "nb-a-list": "[1, 2, 3]",
        "nb-no-nbformat": '{"cells": []}',
        "nb-cells-not-a-list": '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": 7}',
        "nb-cell-not-an-object": '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, '
        '"cells": ["print(1)"]}',
        "nb-unknown-nbformat": '{"nbformat": 9, "nbformat_minor": 0, "cells": []}',
        "nb-deeply-nested": '{"nbformat": 4, "cells": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "nb-binary": bytes(range(256)) * 4,
    }
    for name, data in notebooks.items():
        path = _write(bad / name / f"{name}.ipynb", data)
        add(name, score(path), path.name)
    mixed = bad / "nb-folder-one-bad"
    for n in NOTEBOOKS[:2]:
        _write(mixed / n, (nb / n).read_bytes() if (nb / n).exists() else good_nb)
    _write(mixed / "broken.ipynb", good_nb[:100])
    add("nb-folder-with-one-bad-notebook", score(mixed), "broken.ipynb")
    (bad / "empty-folder").mkdir(parents=True, exist_ok=True)
    add("items-empty-folder", score(bad / "empty-folder"), "empty-folder")
    add("items-missing-path", score(bad / "no-such-notebook.ipynb"), "no-such-notebook.ipynb")
    add("items-unsupported-suffix", score(_write(bad / "report.pdf", b"%PDF-1.4")), "report.pdf")

    # -- items: JSONL texts ------------------------------------------------------------------
    jsonl: dict[str, bytes | str] = {
        "items-not-utf8": b'{"id": "a", "output": "caf\xe9"}\n',
        "items-truncated-line": '{"id": "a", "output": "x"}\n{"id": "b", "outp',
        "items-line-a-list": '["a", "b"]\n',
        "items-missing-output": '{"id": "a"}\n',
        "items-output-an-object": '{"id": "a", "output": {"text": 1}}\n',
        "items-duplicate-ids": '{"id": "a", "output": "x"}\n{"id": "a", "output": "y"}\n',
        "items-inputs-a-list": '{"id": "a", "output": "x", "inputs": ["q"]}\n',
    }
    for name, data in jsonl.items():
        path = _write(bad / f"{name}.jsonl", data)
        add(name, score(path), path.name)

    # -- labels ------------------------------------------------------------------------------
    label_files: dict[str, tuple[str, bytes | str]] = {
        "labels-not-utf8": (
            ".jsonl",
            b'{"item": "' + NOTEBOOKS[0].encode() + b'", "dimension": "data_imputation", '
            b'"score": 2, "rationale": "caf\xe9"}\n',
        ),
        "labels-truncated": (".jsonl", good_labels[0] + '\n{"item": "x", "dimen'),
        "labels-line-a-list": (".jsonl", "[1, 2]\n"),
        "labels-unknown-dimension": (
            ".jsonl",
            json.dumps({"item": NOTEBOOKS[0], "dimension": "vibes", "score": 2}) + "\n",
        ),
        "labels-off-scale": (
            ".jsonl",
            json.dumps({"item": NOTEBOOKS[0], "dimension": "data_imputation", "score": 9}) + "\n",
        ),
        "labels-score-a-word": (
            ".jsonl",
            json.dumps({"item": NOTEBOOKS[0], "dimension": "data_imputation", "score": "good"})
            + "\n",
        ),
        "labels-score-true": (
            ".jsonl",
            '{"item": "' + NOTEBOOKS[0] + '", "dimension": "data_imputation", "score": true}\n',
        ),
        "labels-score-nan": (
            ".jsonl",
            '{"item": "' + NOTEBOOKS[0] + '", "dimension": "data_imputation", "score": NaN}\n',
        ),
        "labels-duplicate": (".jsonl", good_labels[0] + "\n" + good_labels[0] + "\n"),
        "labels-missing-item": (".jsonl", '{"dimension": "data_imputation", "score": 2}\n'),
        "labels-csv-missing-column": (".csv", "item,dimension\nx.ipynb,data_imputation\n"),
        "labels-unsupported-suffix": (".txt", good_labels[0] + "\n"),
        "labels-unknown-items-only": (
            ".jsonl",
            json.dumps({"item": "nobody.ipynb", "dimension": "data_imputation", "score": 2}) + "\n",
        ),
    }
    for name, (suffix, text) in label_files.items():
        path = _write(bad / f"{name}{suffix}", text)
        add(name, align(path), path.name)
    add("labels-a-folder", align(bad / "empty-folder"), "empty-folder")
    add("labels-missing-file", align(bad / "no-labels.jsonl"), "no-labels.jsonl")
    evil = _write(
        bad / "labels-evaluate-off-scale.jsonl",
        json.dumps({"item": NOTEBOOKS[1], "dimension": "model_training", "score": -4}) + "\n",
    )
    add("evaluate-labels-off-scale", with_labels(evil), evil.name)

    # -- rubrics ---------------------------------------------------------------------------
    rubrics: dict[str, bytes | str] = {
        "rubric-not-utf8": b"id: x\nname: caf\xe9\n",
        "rubric-bad-yaml": "id: x\ndimensions: [unclosed\n",
        "rubric-a-list": "- 1\n- 2\n",
        "rubric-no-dimensions": "id: x\nname: X\ndescription: d\n",
        "rubric-inverted-scale": "id: x\nname: X\ndescription: d\ndimensions:\n"
        "  - id: a\n    name: A\n    description: d\n"
        "    scale: {min: 3, max: 1, anchors: {1: bad, 2: ok, 3: good}}\n",
    }
    for name, data in rubrics.items():
        path = _write(bad / f"{name}.yaml", data)
        add(name, score(nb, rubric=str(path), out=bad / "unused.jsonl"), path.name)
    add("rubric-unknown-name", score(nb, rubric="no-such-rubric"), "no-such-rubric")

    # -- ratings ---------------------------------------------------------------------------
    ratings: dict[str, bytes | str] = {
        "ratings-off-scale": json.dumps(_rating(0)) + "\n" + json.dumps(
            _rating(1, scores={"coherence": 6})) + "\n",
        "ratings-undeclared-dimension": json.dumps(_rating(0, scores={"cohesion": 3})) + "\n",
        "ratings-truncated": json.dumps(_rating(0)) + '\n{"item_id": "r1", "out',
        "ratings-not-utf8": b'{"item_id": "r0", "output": "\xff"}\n',
        "ratings-empty": "",
        "ratings-scores-a-list": json.dumps(_rating(0, scores=[1, 2])) + "\n",
    }  # fmt: skip
    for name, data in ratings.items():
        path = _write(bad / f"{name}.jsonl", data)
        add(name, evaluate("--ratings", str(path)), path.name)

    # -- judge files ---------------------------------------------------------------------------
    judge_text = (stored / "judge.json").read_text(encoding="utf-8") if stored.exists() else "{}"
    judges: dict[str, bytes | str] = {
        "judge-truncated": judge_text[: len(judge_text) // 2],
        "judge-future-schema": json.dumps({"schema_version": 999, "kind": "judgealign.judge"}),
        "judge-not-utf8": b'{"schema_version": 1, "x": "\xff"}',
        "judge-a-labels-file": good_labels[0],
    }
    for name, data in judges.items():
        path = _write(bad / f"{name}.json", data)
        add(name, ["score", str(nb), "--judge", str(path), "--out", str(bad / "unused.jsonl"),
                   *cache], path.name)  # fmt: skip
    add("judge-a-folder", ["memory", "show", str(bad / "empty-folder")], "empty-folder")

    # -- output paths ------------------------------------------------------------------------
    add("score-out-a-folder", score(nb, out=stored / "run"), "run")
    add("score-out-a-labels-file", score(nb, out=labels), labels.name)
    add("evaluate-out-a-file", with_labels(labels, out=labels), labels.name)
    add("align-out-a-folder", align(labels, out=stored / "run"), "run")
    blocker = _write(bad / "cache-is-a-file", "x")
    add("cache-dir-a-file", score(nb, cache_dir=blocker), blocker.name)
    add("evaluate-resume-other-settings", with_labels(labels, "--seed", "7"), "run")

    # -- flags -------------------------------------------------------------------------------
    flags: dict[str, tuple[list[str], str]] = {
        "flag-unknown-option": (score(nb, "--nope"), "--nope"),
        "flag-concurrency-not-a-number": (score(nb, "--concurrency", "many"), "--concurrency"),
        "flag-concurrency-zero": (score(nb, "--concurrency", "0"), "concurrency"),
        "flag-max-failed-above-one": (score(nb, "--max-failed", "2"), "--max-failed"),
        "flag-model-without-provider": (score(nb, model="gpt4"), "gpt4"),
        "flag-model-unknown-provider": (score(nb, model="nosuch:m"), "nosuch"),
        "flag-model-unknown-parameter": (score(nb, model="openai:m?colour=red"), "colour"),
        "flag-unknown-dimension": (score(nb, "--dimension", "vibes"), "vibes"),
        "flag-item-budget-zero": (score(nb, "--item-budget", "0"), "item_budget"),
        "flag-variants-unknown": (with_labels(labels, "--variants", "everything"), "everything"),
        "flag-learning-curve-words": (with_labels(labels, "--learning-curve", "a,b"), "a,b"),
        "flag-folds-one": (with_labels(labels, "--folds", "1"), "fold"),
        "flag-k-negative": (align(labels, "--k", "-1"), "k"),
        "flag-context-ratio-negative": (align(labels, "--context-ratio", "-1"), "context"),
        "flag-serve-beyond-loopback-without-token": (
            ["serve", "--model", "fake:lenient", "--host", "0.0.0.0"],
            "token",
        ),
    }
    for name, (argv, names) in flags.items():
        add(name, argv, names)
    return cases
