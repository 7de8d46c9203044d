"""MLflow references, stores and verdicts without a server: parsing, checks, conversions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import judgealign as ja
from judgealign.cli.main import app
from judgealign.data.mlflow_store import (
    check_tracking_uri,
    is_artifact_uri,
    resolve_tracking_uri,
    shown_uri,
)
from judgealign.data.mlflow_traces import TraceQuery, item_from_io
from judgealign.errors import ConfigError, DataError

runner = CliRunner()


def test_references_parse() -> None:
    q = TraceQuery.parse(
        "mlflow:experiment=agent v2&filter=tags.stage = 'review' AND attributes.status = 'OK'"
        "&map=imputation:data_imputation, training:model_training&max_results=50"
        "&tracking_uri=http://127.0.0.1:5000"
    )
    assert q.experiment == "agent v2"
    assert q.filter == "tags.stage = 'review' AND attributes.status = 'OK'"
    assert dict(q.names) == {"imputation": "data_imputation", "training": "model_training"}
    assert (q.max_results, q.tracking_uri) == (50, "http://127.0.0.1:5000")
    assert TraceQuery.parse("mlflow:experiment_id=7").experiment_id == "7"
    assert TraceQuery.parse("MLflow:agent&map=a:b&map=c:d").names == {"a": "b", "c": "d"}


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("mlflow:", "name the traces' experiment"),
        ("mlflow:filter=x", "name the traces' experiment"),
        ("mlflow:agent&colour=red", "unknown part 'colour=red'"),
        ("mlflow:agent&map=nodimension", "ASSESSMENT_NAME:DIMENSION"),
        ("mlflow:agent&max_results=0", "positive whole number"),
        ("mlflow:agent&filter=a&filter=b", "filter given twice"),
    ],
)
def test_bad_references_say_how_to_write_one(ref: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        TraceQuery.parse(ref)


def test_stores_mlflow_cannot_use_are_refused_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri in (
        "sqlite:///x/mlflow.db",
        "http://h:5000",
        "https://h",
        "databricks",
        "postgresql://h/db",
    ):
        assert check_tracking_uri(uri) == uri
    for uri in ("file:///tmp/mlruns", "./mlruns", "mlruns", str(tmp_path)):
        with pytest.raises(ConfigError, match=r"file store.*sqlite:///PATH/mlflow\.db"):
            check_tracking_uri(uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's own opt-in is respected
    assert check_tracking_uri("file:///tmp/mlruns") == "file:///tmp/mlruns"


def test_the_store_resolves_as_mlflow_users_expect(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    with pytest.raises(ConfigError, match="set MLFLOW_TRACKING_URI"):
        resolve_tracking_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://team:5000")
    assert resolve_tracking_uri(None, tmp_path) == "http://team:5000"  # the env over a folder
    assert resolve_tracking_uri("http://mine:5000", tmp_path) == "http://mine:5000"  # the flag
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "file:///srv/mlruns")
    with pytest.raises(ConfigError, match=r"^MLFLOW_TRACKING_URI file:///srv/mlruns"):
        resolve_tracking_uri(None, tmp_path)


def test_printed_uris_hold_no_credentials() -> None:
    assert shown_uri("https://ann:hunter22@mlflow.corp/") == "https://***@mlflow.corp/"
    assert is_artifact_uri("runs:/abc/judge.json") and is_artifact_uri(Path("runs:/a/j.json"))
    assert not is_artifact_uri("judge.json")


def test_items_from_an_apps_inputs_and_outputs() -> None:
    nb = {"cells": [], "nbformat": 4, "nbformat_minor": 5, "metadata": {}}
    item = item_from_io({"task": "train a model"}, json.dumps(nb), item_id="tr-1")
    assert item.kind == "notebook" and json.loads(item.output)["nbformat"] == 4
    chat = {"choices": [{"message": {"role": "assistant", "content": "Paris."}}]}
    assert item_from_io("Capital of France?", chat).output == "Paris."
    assert item_from_io("Capital of France?", chat).inputs == {"input": "Capital of France?"}
    bare = item_from_io(None, "text")
    assert bare.group is None and bare.id.startswith("io-")
    # Same content, same id: repeated scorer calls reuse the judge's rendered text.
    assert item_from_io({"q": "a"}, "b").id == item_from_io({"q": "a"}, "b").id


def test_verdicts_follow_mlflows_conventions() -> None:
    pytest.importorskip("mlflow", reason="MLflow Feedback needs the mlflow extra")
    from judgealign.integrations.mlflow.assessments import feedback_from_judgement

    items, labels = ja.load_demo(dimensions=["data_imputation"])
    rubric = ja.load_rubric("ml-notebook").subset(["data_imputation"])
    judge = ja.Judge(rubric, model="fake:mimic", embedder="fake", context_ratio=None)
    judge.fit(labels, items)
    (j,) = judge.predict(items[:1])
    fb = feedback_from_judgement(j, judge)
    assert fb.name == "data_imputation" and fb.value == int(j.score or 0)
    assert fb.source.source_type == "LLM_JUDGE" and fb.source.source_id == "judgealign:fake:mimic"
    assert fb.metadata["judgealign.examples"] == ",".join(j.episodes)
    texts = {g.id: g.text for g in judge.memory_.guidelines("data_imputation")}  # type: ignore[union-attr]
    for gid in j.guidelines:
        assert texts[gid] in fb.metadata["judgealign.guidelines"]
    na = feedback_from_judgement(j.model_copy(update={"score": 0.0}), judge, name="imputation")
    assert na.name == "imputation" and na.value is None and na.error is None
    assert na.metadata["judgealign.not_applicable"] == "true"
    failed = j.model_copy(update={"score": None, "error": "provider error: HTTP 503"})
    fb = feedback_from_judgement(failed, judge)
    assert fb.value is None and fb.error.error_code == "JUDGEALIGN_PROVIDER_ERROR"


def test_scorers_refuse_server_side_registration() -> None:
    pytest.importorskip("mlflow", reason="MLflow scorers need the mlflow extra")
    scorer = ja.mlflow_scorer(
        ja.Judge(ja.load_rubric("ml-notebook"), model="fake:constant"), "model_use"
    )
    with pytest.raises(ConfigError, match="cannot be registered"):
        scorer.register()
    with pytest.raises(ConfigError, match="set them on the Judge"):
        ja.mlflow_scorers(ja.Judge(ja.load_rubric("ml-notebook")), model="fake:lenient")


@pytest.mark.parametrize("case", ["items_and_traces", "no_store", "forget_remote", "judge_uri"])
def test_mlflow_cli_misuse_is_one_line_exit_2(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    fake = ["--model", "fake:constant", "--embedder", "fake"]
    if case == "items_and_traces":
        args = ["evaluate", "--rubric", "ml-notebook", "--labels", "mlflow:agent"]
        args += ["--items", str(tmp_path), "--out", str(tmp_path / "run"), *fake]
        expected = "--items is not used with --labels mlflow:"
    elif case == "no_store":
        args = ["align", "--rubric", "ml-notebook", "--labels", "mlflow:agent"]
        args += ["--out", str(tmp_path / "j.json"), *fake]
        expected = "set MLFLOW_TRACKING_URI"
    elif case == "forget_remote":
        args = ["memory", "forget", "runs:/abc/judge.json", "--label", "a::b::c"]
        expected = "rewrites a local judge file"
    else:
        args = ["score", str(tmp_path), "--judge", "runs:/abc/judge.json"]
        expected = "set MLFLOW_TRACKING_URI"
    result = runner.invoke(app, args)
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert text.startswith("error:") and expected in text and "Traceback" not in text
