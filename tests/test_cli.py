"""The judgealign command end to end on the fake provider."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from typer.testing import CliRunner

from judgealign.cli.main import app

runner = CliRunner()

FLAWS = {
    1: "imputer = SimpleImputer().fit(df)  # before the split\nX_train, X_test = split(df)",
    2: "X_train, X_test = split(df)\nX_train = X_train.fillna(X_train.mean())",
    3: "pipe = Pipeline([('imp', SimpleImputer()), ('model', model)]).fit(X_train, y_train)",
}


def write_notebooks(folder: Path, n: int = 6) -> list[dict[str, object]]:
    folder.mkdir(parents=True, exist_ok=True)
    labels = []
    for i in range(n):
        score = 1 + i % 3
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"# Notebook {i}"),
            nbformat.v4.new_code_cell("import pandas as pd\ndf = pd.read_csv('data.csv')"),
            nbformat.v4.new_code_cell(FLAWS[score]),
        ]
        nbformat.write(nb, folder / f"nb{i}.ipynb")
        labels.append(
            {
                "item": f"nb{i}.ipynb",
                "dimension": "data_imputation",
                "score": score,
                "rationale": f"Imputation pattern {score}: {FLAWS[score].split()[0]}.",
                "rater": "expert",
            }
        )
    (folder / "labels.jsonl").write_text("\n".join(json.dumps(lb) for lb in labels) + "\n")
    return labels


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "judgealign" in result.output


def test_score_writes_judgements_and_resumes(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 3)
    out = tmp_path / "j.jsonl"
    args = [
        "score",
        str(nbs),
        "--rubric",
        "ml-notebook",
        "--model",
        "fake:lenient",
        "--dimension",
        "data_imputation",
        "--dimension",
        "model_use",
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 6 and {x["score"] for x in lines} == {3.0}
    again = runner.invoke(app, args)
    assert again.exit_code == 0
    assert len(out.read_text().splitlines()) == 6  # nothing judged twice


def test_score_bad_rubric_is_one_line_error(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 1)
    result = runner.invoke(
        app, ["score", str(nbs), "--rubric", "nope", "--out", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 2
    assert "unknown rubric 'nope'" in result.output
    assert "Traceback" not in result.output


def test_malformed_notebook_is_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ipynb"
    bad.write_text("{not json")
    result = runner.invoke(
        app,
        [
            "score",
            str(bad),
            "--rubric",
            "ml-notebook",
            "--model",
            "fake:constant",
            "--out",
            str(tmp_path / "o.jsonl"),
        ],
    )
    assert result.exit_code == 2 and "broken.ipynb" in result.output


def test_align_show_score_forget(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    labels = write_notebooks(nbs, 6)
    judge_file = tmp_path / "judge.json"
    cache = str(tmp_path / "cache")
    result = runner.invoke(
        app,
        [
            "align",
            "--rubric",
            "ml-notebook",
            "--labels",
            str(nbs / "labels.jsonl"),
            "--items",
            str(nbs),
            "--model",
            "fake:mimic",
            "--embedder",
            "fake",
            "--dimension",
            "data_imputation",
            "--out",
            str(judge_file),
            "--cache-dir",
            cache,
            "--k",
            "2",
            "--context-ratio",
            "0.5",
        ],
    )
    assert result.exit_code == 0, result.output
    saved = json.loads(judge_file.read_text())
    assert saved["format"] == "judgealign.judge"
    assert saved["params"]["k"] == 2 and saved["params"]["context_ratio"] == 0.5
    assert len(saved["memory"]["dimensions"]["data_imputation"]["episodes"]) == 6

    shown = runner.invoke(app, ["memory", "show", str(judge_file)])
    assert shown.exit_code == 0 and "data_imputation" in shown.output

    out = tmp_path / "aligned.jsonl"
    scored = runner.invoke(
        app,
        ["score", str(nbs), "--judge", str(judge_file), "--out", str(out), "--cache-dir", cache],
    )
    assert scored.exit_code == 0, scored.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 6 and all(r["episodes"] for r in rows)

    gone = f"{labels[0]['item']}::data_imputation::expert"
    forgot = runner.invoke(
        app, ["memory", "forget", str(judge_file), "--label", gone, "--cache-dir", cache]
    )
    assert forgot.exit_code == 0, forgot.output
    memory = json.loads(judge_file.read_text())["memory"]["dimensions"]["data_imputation"]
    assert all(ep["id"] != gone for ep in memory["episodes"])
    assert all(gone not in g["sources"] for g in memory["guidelines"])


def test_memory_show_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "judge.json"
    broken.write_text('{"format": "judgealign.judge", "schema_version": 99}')
    result = runner.invoke(app, ["memory", "show", str(broken)])
    assert result.exit_code == 2 and "upgrade judgealign" in result.output


@pytest.mark.parametrize("bad", ["unknown_dim", "off_scale"])
def test_align_rejects_bad_labels(tmp_path: Path, bad: str) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 2)
    row = {"item": "nb0.ipynb", "dimension": "data_imputation", "score": 2, "rationale": "x"}
    if bad == "unknown_dim":
        row["dimension"] = "vibes"
    else:
        row["score"] = 7
    (nbs / "labels.jsonl").write_text(json.dumps(row) + "\n")
    result = runner.invoke(
        app,
        [
            "align",
            "--rubric",
            "ml-notebook",
            "--labels",
            str(nbs / "labels.jsonl"),
            "--out",
            str(tmp_path / "j.json"),
        ],
    )
    assert result.exit_code == 2
    assert "labels.jsonl" in result.output
    assert not (tmp_path / "j.json").exists()


@pytest.mark.parametrize("command", ["score", "align", "evaluate"])
def test_help_shows_no_fake_default(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "fake" not in result.output.split("--model", 1)[1].split("--", 1)[0]
    assert "embedded local model" in " ".join(result.output.split())


@pytest.mark.parametrize("command", ["score", "align", "evaluate"])
def test_a_forgotten_model_stops_with_one_line(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import judgealign.cli.options as options
    from judgealign.providers import defaults

    monkeypatch.setattr(
        options, "default_model", lambda: defaults.default_model(installed=lambda: False)
    )
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 4)
    base = ["--rubric", "ml-notebook", "--dimension", "data_imputation", "--embedder", "fake"]
    labels = ["--labels", str(nbs / "labels.jsonl"), "--items", str(nbs)]
    args = {
        "score": ["score", str(nbs), *base, "--out", str(tmp_path / "j.jsonl")],
        "align": ["align", *base, *labels, "--out", str(tmp_path / "judge.json")],
        "evaluate": ["evaluate", *base, *labels, "--out", str(tmp_path / "run")],
    }[command]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "no judge model given: pass --model" in " ".join(result.output.split())
    assert not (tmp_path / "j.jsonl").exists() and not (tmp_path / "judge.json").exists()


def test_refit_applies_the_options_given_and_keeps_the_rest(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 6)
    judge_file = tmp_path / "judge.json"
    args = ["align", "--rubric", "ml-notebook", "--labels", str(nbs / "labels.jsonl")]
    args += ["--items", str(nbs), "--model", "fake:mimic", "--embedder", "fake"]
    args += ["--dimension", "data_imputation", "--out", str(judge_file)]
    args += ["--cache-dir", str(tmp_path / "cache")]
    first = runner.invoke(app, [*args, "--k", "3"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, [*args, "--max-guidelines", "4", "--context-ratio", "0"])
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert "applied max_guidelines=4, context_ratio=None" in said
    params = json.loads(judge_file.read_text())["params"]
    assert (params["k"], params["max_guidelines"], params["context_ratio"]) == (3, 4, None)
    same = runner.invoke(app, args)
    assert "same settings as the file" in " ".join(same.output.split())
    other = runner.invoke(app, [*args, "--embedder", "fake:other"])
    assert other.exit_code == 2 and "align into a new --out" in " ".join(other.output.split())


def test_a_judge_file_of_the_first_schema_still_loads(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 6)
    judge_file = tmp_path / "judge.json"
    args = ["align", "--rubric", "ml-notebook", "--labels", str(nbs / "labels.jsonl")]
    args += ["--items", str(nbs), "--model", "fake:mimic", "--embedder", "fake"]
    args += ["--dimension", "data_imputation", "--out", str(judge_file)]
    assert runner.invoke(app, args).exit_code == 0
    data = json.loads(judge_file.read_text())
    # What 0.1 wrote: semantic/episodic switches, fixed budgets, an experiment switched on.
    data["schema_version"] = 1
    data["params"] = {
        "model": "fake:mimic",
        "embedder": "fake",
        "semantic": False,
        "episodic": True,
        "k": 3,
        "episode_budget_tokens": 450,
        "blend": True,
        "blend_k": 5,
    }
    data["memory"]["schema_version"] = 3
    judge_file.write_text(json.dumps(data))
    from judgealign.judge.persistence import load_judge

    with pytest.warns(UserWarning, match="fitted with blend, which judgealign no longer has"):
        judge = load_judge(judge_file)
    assert (judge.variant, judge.k) == ("episodic", 3) and judge.memory_ is not None
    out = tmp_path / "scored.jsonl"
    scored = runner.invoke(app, ["score", str(nbs), "--judge", str(judge_file), "--out", str(out)])
    assert scored.exit_code == 0, scored.output


def test_a_labels_file_for_every_dimension_serves_a_run_on_some(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    labels = write_notebooks(nbs, 8)
    other = [{**lb, "dimension": "model_use"} for lb in labels]
    lines = [json.dumps(lb) for lb in labels + other]
    (nbs / "labels.jsonl").write_text("\n".join(lines) + "\n")
    common = ["--rubric", "ml-notebook", "--labels", str(nbs / "labels.jsonl"), "--items"]
    common += [str(nbs), "--model", "fake:lenient", "--embedder", "fake"]
    common += ["--dimension", "data_imputation", "--cache-dir", str(tmp_path / "cache")]
    aligned = runner.invoke(app, ["align", *common, "--out", str(tmp_path / "judge.json")])
    assert aligned.exit_code == 0, aligned.output
    memory = json.loads((tmp_path / "judge.json").read_text())["memory"]["dimensions"]
    assert set(memory) == {"data_imputation"}
    run = ["evaluate", *common, "--folds", "2", "--resamples", "100", "--out"]
    evaluated = runner.invoke(app, [*run, str(tmp_path / "run")])
    assert evaluated.exit_code == 0, evaluated.output
    # A dimension the rubric does not have at all is still an error naming the file.
    (nbs / "labels.jsonl").write_text(json.dumps({**labels[0], "dimension": "vibes"}) + "\n")
    bad = runner.invoke(app, [*run, str(tmp_path / "run2")])
    assert bad.exit_code == 2 and "unknown dimension 'vibes'" in bad.output
    assert "labels.jsonl" in bad.output


def test_progress_is_line_based_when_not_a_terminal(tmp_path: Path) -> None:
    # CI logs, `!judgealign` in Jupyter, nohup: no live bar, but timestamped lines whose
    # total counts the folds still to align as well as the judgements.
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 6)
    args = ["evaluate", "--rubric", "ml-notebook", "--labels", str(nbs / "labels.jsonl")]
    args += ["--items", str(nbs), "--model", "fake:mimic", "--embedder", "fake"]
    args += ["--dimension", "data_imputation", "--folds", "2", "--resamples", "100"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    # 6 items x 4 variants + 6 training items aligned (3 per fold x 2 folds)
    assert any(line.endswith("] evaluating: 0/30") for line in lines)
    assert any("] aligning fold 2 (3 labels)" in line for line in lines)
    assert any("evaluating 30/30 (100%)" in line for line in lines)


def test_score_resumes_after_a_torn_last_line(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 3)
    out = tmp_path / "j.jsonl"
    args = ["score", str(nbs), "--rubric", "ml-notebook", "--dimension", "data_imputation"]
    args += ["--model", "fake:constant", "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    assert runner.invoke(app, args).exit_code == 0
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])  # killed mid-record
    assert runner.invoke(app, args).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and len({r["item"] for r in rows}) == 3


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_a_run_whose_judgements_all_failed_exits_non_zero(tmp_path: Path, command: str) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 4)
    base = ["--rubric", "ml-notebook", "--dimension", "data_imputation", "--model", "fake:garbage"]
    base += ["--embedder", "fake", "--cache-dir", str(tmp_path / "c"), "--max-failed", "1"]
    if command == "score":
        args = ["score", str(nbs), *base, "--out", str(tmp_path / "j.jsonl")]
    else:
        args = ["evaluate", *base, "--labels", str(nbs / "labels.jsonl"), "--items", str(nbs)]
        args += ["--folds", "2", "--resamples", "100", "--out", str(tmp_path / "run")]
    result = runner.invoke(app, args)
    said = " ".join(result.output.split())
    assert result.exit_code == 1, said
    assert "judgements failed: unparseable answer" in said and "not usable" in said
    if command == "evaluate":  # the report says so too
        notes = json.loads((tmp_path / "run" / "report.json").read_text())["notes"]
        assert notes[0].startswith("WARNING: ") and "judgements failed" in notes[0]


def test_failure_threshold() -> None:
    from judgealign.judge.failures import FailureSummary
    from judgealign.judge.judgement import Judgement

    ok = Judgement(item="a", dimension="d", score=2)
    bad = Judgement(item="b", dimension="d", score=None, error="provider error: 500")
    summary = FailureSummary.of([ok, ok, ok, bad])
    assert summary.line() == "1 of 4 judgements failed: provider error: 500 (1)"
    assert not summary.too_many(0.5) and summary.too_many(0.2)
    assert not FailureSummary.of([ok]).too_many(0.0)


def test_an_echoed_api_key_reaches_no_file_and_no_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from judgealign.testing.server import HttpError, OpenAICompatServer

    secret = "test-secret-7f3a9c"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    echo = f'{{"error": "bad key {secret}", "headers": {{"authorization": "Bearer {secret}"}}}}'
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 2)
    out = tmp_path / "j.jsonl"
    with OpenAICompatServer(handler=lambda body: HttpError(401, echo)) as srv:
        args = ["score", str(nbs), "--rubric", "ml-notebook", "--dimension", "data_imputation"]
        args += ["--model", f"openai:m?base_url={srv.base_url}", "--out", str(out)]
        result = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1  # every judgement failed
    assert "HTTP 401" in out.read_text() and "***" in out.read_text()
    for text in (result.output, out.read_text()):
        assert secret not in text


def test_unreadable_answers_are_asked_again_not_replayed(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 2)
    cache = str(tmp_path / "cache")

    def score(out: str, *extra: str) -> str:
        args = ["score", str(nbs), "--rubric", "ml-notebook", "--dimension", "data_imputation"]
        args += ["--model", "fake:garbage", "--cache-dir", cache, "--out", str(tmp_path / out)]
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 1  # nothing readable
        return " ".join(result.output.split())

    assert "model calls: 4 (+0 cached)" in score("a.jsonl")  # 2 items, each asked twice
    # A fresh --out asks the model again: the unreadable answers were not cached.
    assert "model calls: 4 (+0 cached)" in score("b.jsonl")
    # The same --out keeps its (unreadable) judgements unless asked to retry them.
    assert "model calls: 0 (+0 cached)" in score("b.jsonl")
    assert "model calls: 4 (+0 cached)" in score("b.jsonl", "--retry-failed")


@pytest.mark.parametrize(
    "case",
    ["notebook", "items_jsonl", "labels", "rubric", "deep_json", "out_is_folder", "run_is_file"],
)
def test_bad_inputs_are_one_line_errors_with_exit_code_2(tmp_path: Path, case: str) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 3)
    labels = nbs / "labels.jsonl"
    rubric = "ml-notebook"
    items = str(nbs)
    out = tmp_path / "out.jsonl"
    named = ""
    command = "score"
    if case == "notebook":
        (nbs / "bad.ipynb").write_bytes(b"\xff\xfe{}")
        named = "bad.ipynb"
    elif case == "items_jsonl":
        (tmp_path / "items.jsonl").write_bytes(b'\xff{"id": "a", "output": "x"}\n')
        items, named = str(tmp_path / "items.jsonl"), "items.jsonl"
    elif case == "labels":
        labels.write_bytes(b"\xff\n")
        command, named = "align", "labels.jsonl"
    elif case == "rubric":
        (tmp_path / "r.yaml").write_bytes(b"id: x\n\xff")
        rubric, named = str(tmp_path / "r.yaml"), "r.yaml"
    elif case == "deep_json":
        (tmp_path / "deep.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
        items, named = str(tmp_path / "deep.jsonl"), "deep.jsonl"
    elif case == "out_is_folder":
        out.mkdir()
        named = "out.jsonl"
    else:
        (tmp_path / "run").write_text("not a folder")
        command, named = "evaluate", "run"
    common = ["--rubric", rubric, "--model", "fake:constant", "--embedder", "fake"]
    if command == "score":
        args = ["score", items, *common, "--dimension", "data_imputation", "--out", str(out)]
    elif command == "align":
        args = ["align", *common, "--labels", str(labels), "--items", items]
        args += ["--out", str(tmp_path / "judge.json")]
    else:
        args = ["evaluate", *common, "--labels", str(labels), "--items", items]
        args += ["--out", str(tmp_path / "run")]
    before = labels.read_bytes()
    result = runner.invoke(app, args)
    text = result.output.strip()
    assert result.exit_code == 2, text
    assert text.startswith("error:") and named in text and "Traceback" not in text
    assert len(" ".join(text.split())) < 400  # one line, however the console wraps it
    assert labels.read_bytes() == before  # nothing stored is touched
