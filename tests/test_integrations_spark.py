"""Scoring and evaluating on Spark, in local mode, with the fake providers and a loopback server.

One SparkSession (two task slots) serves the whole module: the JVM takes ~15 s to start on
2 cores. Needs pyspark (dev extra) and a Java runtime (scripts/install-system.sh).
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import judgealign as ja
from judgealign.errors import DataError
from judgealign.testing.server import Answer, HttpError, OpenAICompatServer

pytest.importorskip("pyspark", reason="pyspark missing: pip install -e '.[dev]'")
if shutil.which("java") is None:
    pytest.skip(
        "no Java runtime for Spark: run scripts/install-system.sh (default-jre-headless)",
        allow_module_level=True,
    )

from judgealign.integrations.spark import (
    collect_judgements,
    local_session,
    read_items,
    read_judgements,
    score_dataframe,
)

DIMS = ["model_use", "data_imputation"]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = local_session(2)
    yield session
    session.stop()


def test_notebooks_get_the_same_judgements_as_in_one_process(spark: Any, tmp_path: Path) -> None:
    demo_items, labels = ja.load_demo(dimensions=DIMS)
    folder = tmp_path / "notebooks"
    for item in demo_items:
        (folder / item.id).parent.mkdir(parents=True, exist_ok=True)
        (folder / item.id).write_text(item.output, encoding="utf-8")
    items = ja.load_items([folder])
    train = {it.id for it in items[::2]}
    judge = ja.Judge(
        ja.load_rubric("ml-notebook").subset(DIMS), model="fake:mimic", embedder="fake"
    )
    judge.fit([lb for lb in labels if lb.item in train], items)

    frame = read_items(spark, [folder])  # Spark's binaryFile source: ids as load_items gives
    rows = score_dataframe(judge, frame, out=tmp_path / "scores", concurrency=3)
    got = {j.key: j for j in collect_judgements(rows)}
    want = {j.key: j for j in judge.predict(items)}

    assert set(got) == set(want) and len(got) == len(items) * len(DIMS)
    for key, j in want.items():
        other = got[key]
        assert (other.score, other.rationale, other.episodes, other.guidelines, other.error) == (
            j.score,
            j.rationale,
            j.episodes,
            j.guidelines,
            j.error,
        )
    assert any(j.episodes for j in got.values())  # the broadcast memory was searched
    provenance = rows.select("provenance.judge", "provenance.model").distinct().collect()
    assert len(provenance) == 1 and provenance[0]["model"] == "fake:mimic"


def test_failures_are_rows_and_a_rerun_asks_only_what_is_missing(
    spark: Any, tmp_path: Path
) -> None:
    state = {"broken": True}

    def answer(body: dict[str, Any]) -> Answer | HttpError:
        if state["broken"] and "FAILME" in json.dumps(body):
            return HttpError(400, "this request is refused")
        return Answer('{"rationale": "Reads fine.", "score": 2}')

    rubric = ja.load_rubric("summeval").subset(["coherence"])
    texts = [
        (f"t{i:02d}", f"Summary {i}." + (" FAILME" if i in (3, 7) else ""), {"article": "A."})
        for i in range(10)
    ]
    frame = spark.createDataFrame(texts, "id string, output string, inputs map<string,string>")
    broken = spark.createDataFrame(
        [("nb-bad", "{not json", "notebook")], "id string, output string, kind string"
    )
    frame = frame.unionByName(broken, allowMissingColumns=True)
    out = tmp_path / "scores"
    with OpenAICompatServer(handler=answer) as srv:
        judge = ja.Judge(rubric, model=f"openai:test?base_url={srv.base_url}")
        first = {r["item_id"]: r for r in score_dataframe(judge, frame, out=out).collect()}

        assert len(first) == 11  # the job finished: every failure is a row
        assert first["t03"]["error"].startswith("provider error") and first["t03"]["score"] is None
        assert first["t07"]["error"].startswith("provider error")
        assert first["nb-bad"]["error"].startswith("unreadable item")
        assert all(first[f"t{i:02d}"]["score"] == 2.0 for i in (0, 1, 2, 4, 5, 6, 8, 9))
        assert first["t00"]["usage"]["calls"] == 1

        state["broken"] = False
        asked = len(srv.chat_requests)
        second = {r["item_id"]: r for r in score_dataframe(judge, frame, out=out).collect()}
        # Only the provider failures were asked again (an unreadable item stays as it was).
        assert len(srv.chat_requests) - asked == 2
        assert second["t03"]["score"] == 2.0 and second["t07"]["error"] is None
        assert second["nb-bad"]["error"].startswith("unreadable item")
        assert read_judgements(spark, out).count() == 11  # the newest row per judgement

        with pytest.raises(DataError, match="another judge"):
            score_dataframe(ja.clone(judge, max_tokens=123), frame, out=out)

        # A worker that cannot build its provider (here: its API key is not set on the
        # executors) writes its items' rows with the reason; the job still finishes.
        unset = ja.Judge(rubric, model=f"openai:test?base_url={srv.base_url}&api_key_env=JA_NOPE")
        rows = score_dataframe(unset, frame.limit(3), out=tmp_path / "nokey").collect()
        assert len(rows) == 3
        assert all(r["error"].startswith("worker setup failed: ConfigError") for r in rows)


def test_cli_scores_jsonl_items_with_the_spark_engine(spark: Any, tmp_path: Path) -> None:
    from judgealign.cli.main import app

    items = tmp_path / "items.jsonl"
    items.write_text(
        "\n".join(
            json.dumps(
                {"id": f"s{i}", "output": f"Summary {i}.", "inputs": {"article": ["A.", "B."]}}
            )
            for i in range(6)
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "scores"
    args = ["score", str(items), "--rubric", "summeval", "--dimension", "coherence",
            "--model", "fake:constant", "--engine", "spark", "--out", str(out),
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "6 judgements" in result.output
    rows = read_judgements(spark, out).collect()
    assert sorted(r["item_id"] for r in rows) == [f"s{i}" for i in range(6)]
    assert {r["score"] for r in rows} == {3.0}  # fake:constant: the middle of 1-5

    again = runner.invoke(app, args)  # resumed: the table holds every judgement
    assert again.exit_code == 0 and "model calls: 0 (+0 cached)" in again.output
    # Into a new table: the executors answer from the response cache the first run's wrote.
    fresh = runner.invoke(app, [*args[:-4], "--out", str(tmp_path / "scores2"), *args[-2:]])
    assert fresh.exit_code == 0 and "model calls: 0 (+6 cached)" in fresh.output, fresh.output

    bad = runner.invoke(app, [*args[:-4], "--out", str(tmp_path / "j.jsonl"), *args[-2:]])
    assert bad.exit_code == 2 and "is a folder" in bad.output


def test_evaluation_folds_as_spark_tasks_give_the_one_process_report(
    spark: Any, tmp_path: Path
) -> None:
    from judgealign.integrations.spark import evaluate_on_spark

    items, labels = ja.load_demo(dimensions=["model_use"])
    judge = ja.Judge(
        ja.load_rubric("ml-notebook").subset(["model_use"]), model="fake:mimic", embedder="fake"
    )
    # Two repeats: a fold's task runs that fold in each repeat's cross-validation.
    options: dict[str, Any] = {
        "variants": ["baseline", "full"],
        "folds": 3,
        "repeats": 2,
        "n_resamples": 200,
    }
    local = ja.evaluate(judge, items, labels, run_dir=tmp_path / "local", progress=None, **options)
    run_dir = tmp_path / "spark"
    fresh = ja.clone(judge)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        on_spark = evaluate_on_spark(spark, fresh, items, labels, run_dir=run_dir, progress=None,
                                     **options)  # fmt: skip
    assert not [w for w in caught if "on Spark" in str(w.message)]  # no fold fell back
    assert fresh.usage().calls == 0  # every fit and judgement came from the tasks

    for variant in ("baseline", "full"):
        a, b = local.result(variant, "model_use"), on_spark.result(variant, "model_use")
        assert (a.n_scored, a.mae) == (b.n_scored, b.mae)
    # Each fold's fits came back from its task: the driver's evaluate refitted nothing.
    assert sorted(p.name for p in (run_dir / "judges").glob("*.judge.json")) == sorted(
        [f"fold-{f}.judge.json" for f in range(3)] + [f"fold-{f}-r1.judge.json" for f in range(3)]
    )
    stored = (run_dir / "judgements.jsonl").read_text().splitlines()

    def verdicts(lines: list[str]) -> set[tuple[Any, ...]]:
        rows = [json.loads(line) for line in lines]
        return {(r["variant"], r["fold"], r["judgement"]["item"], r["judgement"]["score"],
                 tuple(r["judgement"]["episodes"])) for r in rows}  # fmt: skip

    assert verdicts(stored) == verdicts(
        (tmp_path / "local" / "judgements.jsonl").read_text().splitlines()
    )
    # A second call resumes: nothing new is judged.
    evaluate_on_spark(spark, fresh, items, labels, run_dir=run_dir, progress=None, **options)
    assert (run_dir / "judgements.jsonl").read_text().splitlines() == stored


def test_read_items_gives_load_items_ids_and_texts(spark: Any, tmp_path: Path) -> None:
    from judgealign.integrations.spark.items import item_from_record

    demo_items, _ = ja.load_demo(dimensions=["model_use"])
    folder = tmp_path / "runs"
    for n, item in enumerate(demo_items[:3]):
        path = folder / ("sub" if n else "") / item.id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(item.output, encoding="utf-8")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}", encoding="utf-8")
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text(
        json.dumps({"id": 7, "output": "A.", "inputs": {"dialogue": ["hi", "yo"]}, "group": 3})
        + "\n",
        encoding="utf-8",
    )
    parquet = tmp_path / "table.parquet"
    spark.createDataFrame(
        [("p1", "Text.", ("Q?",))], "id string, output string, inputs struct<question: string>"
    ).write.parquet(str(parquet))

    frame = read_items(spark, [folder, jsonl, parquet])
    got = {r["id"]: item_from_record(r.asDict()) for r in frame.collect()}
    want = {it.id: it for it in ja.load_items([folder, jsonl])}
    assert set(got) == set(want) | {"p1"}  # checkpoints left out, as load_items does
    for item_id, item in want.items():
        assert (got[item_id].kind, got[item_id].output, got[item_id].inputs) == (
            item.kind,
            item.output,
            item.inputs,
        )
        assert got[item_id].group_id == item.group_id
    assert got["p1"].inputs == {"question": "Q?"}


def test_cli_evaluates_with_folds_on_spark(spark: Any, tmp_path: Path) -> None:
    from judgealign.cli.main import app
    from judgealign.demo.dataset import DATA_DIR as DEMO_DIR

    out = tmp_path / "run"
    args = ["evaluate", "--rubric", "ml-notebook", "--items", str(DEMO_DIR / "notebooks"),
            "--labels", str(DEMO_DIR / "labels.jsonl"), "--dimension", "model_use",
            "--model", "fake:mimic", "--embedder", "fake", "--variants", "baseline,full",
            "--folds", "2", "--resamples", "200", "--engine", "spark", "--out", str(out),
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "report.json").exists() and (out / "report.html").exists()
    assert sorted(p.name for p in (out / "judges").glob("*.judge.json")) == [
        "fold-0.judge.json",
        "fold-1.judge.json",
    ]
