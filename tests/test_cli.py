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
    assert result.exit_code == 1
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
    assert result.exit_code == 1 and "broken.ipynb" in result.output


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
    assert result.exit_code == 1 and "upgrade judgealign" in result.output


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
    assert result.exit_code == 1
    assert "labels.jsonl" in result.output
    assert not (tmp_path / "j.json").exists()


def test_align_recalibrate_prints_the_map_and_refuses_it_with_blend(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 12)
    judge_file = tmp_path / "judge.json"
    args = ["align", "--rubric", "ml-notebook", "--labels", str(nbs / "labels.jsonl")]
    args += ["--items", str(nbs), "--model", "fake:lenient", "--embedder", "fake"]
    args += ["--dimension", "data_imputation", "--out", str(judge_file), "--recalibrate"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    both = runner.invoke(app, [*args, "--blend"])
    assert both.exit_code == 1 and "one of --blend and --recalibrate" in both.output
    assert not judge_file.exists()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(judge_file.read_text())
    cal = saved["memory"]["dimensions"]["data_imputation"]["calibrations"]["full"]
    assert len(cal["points"]) == 12 and cal["slope"] >= 0
    assert "score calibration data_imputation/full:" in " ".join(result.output.split())


def test_align_blend_prints_the_fitted_weights(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 10)
    judge_file = tmp_path / "judge.json"
    args = ["align", "--rubric", "ml-notebook", "--labels", str(nbs / "labels.jsonl")]
    args += ["--items", str(nbs), "--model", "fake:lenient", "--embedder", "fake"]
    args += ["--dimension", "data_imputation", "--out", str(judge_file), "--blend"]
    result = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    saved = json.loads(judge_file.read_text())
    assert saved["params"]["blend"] is True
    blend = saved["memory"]["dimensions"]["data_imputation"]["blend"]
    assert blend["n_labels"] == 10
    assert abs(blend["judge"] + blend["neighbours"] + blend["median"] - 1.0) < 1e-9
    assert "score blend data_imputation: judge" in " ".join(result.output.split())


def test_evaluate_recalibrate_reports_the_maps(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 16)
    args = ["evaluate", "--rubric", "ml-notebook", "--labels", str(nbs / "labels.jsonl")]
    args += ["--items", str(nbs), "--model", "fake:lenient", "--embedder", "fake"]
    args += ["--dimension", "data_imputation", "--folds", "2", "--variants", "baseline,full"]
    args += ["--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")]
    args += ["--resamples", "200", "--recalibrate"]
    refused = runner.invoke(app, [*args, "--blend"])
    assert refused.exit_code == 1 and "one of --blend and --recalibrate" in refused.output
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "score calibration data_imputation/full: per fold" in " ".join(result.output.split())
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    (line,) = report["calibrations"]
    assert line["variant"] == "full" and len(line["slopes"]) == 2 and line["n"] == 16


def test_align_base_rates_reach_the_judges_prompt(tmp_path: Path) -> None:
    nbs = tmp_path / "nbs"
    write_notebooks(nbs, 8)
    judge_file, cache = tmp_path / "judge.json", tmp_path / "cache"
    args = ["align", "--rubric", "ml-notebook", "--labels", str(nbs / "labels.jsonl")]
    args += ["--items", str(nbs), "--model", "fake:lenient", "--embedder", "fake"]
    args += ["--dimension", "data_imputation", "--out", str(judge_file), "--base-rates"]
    result = runner.invoke(app, [*args, "--calibrate", "--cache-dir", str(cache)])
    assert result.exit_code == 0, result.output
    assert json.loads(judge_file.read_text())["params"]["base_rates"] is True
    shown = " ".join(result.output.split())
    assert "base rates: How the experts scored this dimension on 8 labelled items" in shown
    new = tmp_path / "new"
    write_notebooks(new, 1)
    (new / "nb0.ipynb").rename(new / "fresh.ipynb")  # not a labelled item's id
    score_args = ["score", str(new), "--judge", str(judge_file), "--out", str(tmp_path / "j")]
    scored = runner.invoke(app, [*score_args, "--cache-dir", str(cache)])
    assert scored.exit_code == 0, scored.output
    prompts = [p.read_text() for p in cache.rglob("*.json")]
    assert any("How the experts scored this dimension on 8 labelled items" in p for p in prompts)


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
    assert bad.exit_code == 1 and "unknown dimension 'vibes'" in bad.output
    assert "labels.jsonl" in bad.output
