"""judgealign where MLflow users work, against a real tracking server on 127.0.0.1.

The server (``mlflow server``, SQLite backend, artifacts in a temporary folder) is started once
for the session by ``tests/mlflow_server.py``. An experiment of agent traces carries expert
feedback as MLflow users leave it: several raters, an edited assessment, an overridden one, a
deleted one, judge and code feedback that are not expert labels, and unlabelled traffic. The
round trip: traces with expert assessments -> ``judgealign align --labels mlflow:...`` ->
``mlflow.genai.evaluate`` with the aligned scorers -> verdicts visible with
``mlflow.search_traces`` / ``mlflow.search_runs``; plus the evaluation run and its re-logging,
verdicts written back by ``score``, and one-line errors for stores that cannot be used.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import judgealign as ja
from judgealign.cli.main import app
from judgealign.data.mlflow_traces import read_traces
from mlflow_server import MlflowServer, free_port
from mlflow_server import mlflow_server as mlflow_server  # the session fixture

mlflow = pytest.importorskip("mlflow", reason="the MLflow tests need the mlflow extra")

runner = CliRunner()
EXPERIMENT = "agent-traces"
REF = f"mlflow:experiment={EXPERIMENT}&map=correct:correctness,clear:clarity"
RUBRIC = """\
schema_version: 1
id: qa
name: Answer quality
item_kind: text
dimensions:
  - id: correctness
    name: Correctness
    description: Whether the answer is right.
    scale:
      min: 1
      max: 3
      na_value: 0
      anchors: {1: wrong, 2: partly right, 3: right}
  - id: clarity
    name: Clarity
    description: Whether the answer is clear.
    scale:
      min: 1
      max: 3
      anchors: {1: confusing, 2: passable, 3: clear}
"""
FAKE = ["--model", "fake:mimic", "--embedder", "fake"]


@contextlib.contextmanager
def fluent(uri: str) -> Iterator[None]:
    """MLflow's fluent API (spans, feedback, set_experiment, genai.evaluate) pointed at ``uri``
    for a block. ``mlflow.set_tracking_uri`` also writes (and unsets) MLFLOW_TRACKING_URI, so
    the variable is put back as it was."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        if before is not None:
            os.environ["MLFLOW_TRACKING_URI"] = before


def _human(rater: str) -> Any:
    from mlflow.entities import AssessmentSource, AssessmentSourceType

    return AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id=rater)


class Seeded:
    """The seeded experiment and what its expert labels must read back as."""

    def __init__(self, server: MlflowServer, rubric_path: Path) -> None:
        self.server = server
        self.rubric_path = rubric_path
        self.trace_ids: list[str] = []
        self.expected: dict[tuple[str, str, str], tuple[float, str]] = {}
        self.experiment_id = ""


@pytest.fixture(scope="module")
def seeded(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Ten agent traces with expert feedback left the ways MLflow users leave it."""
    from mlflow.entities import AssessmentSource, AssessmentSourceType, Feedback

    root = tmp_path_factory.mktemp("seeded")
    rubric_path = root / "qa.yaml"
    rubric_path.write_text(RUBRIC, encoding="utf-8")
    s = Seeded(mlflow_server, rubric_path)
    mp = pytest.MonkeyPatch()
    # Traces are exported synchronously, so assessments can be attached right away.
    mp.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    try:
        stack = contextlib.ExitStack()
        stack.enter_context(fluent(mlflow_server.uri))
        s.experiment_id = mlflow.set_experiment(EXPERIMENT).experiment_id
        questions = [f"What is {i} + {i}?" for i in range(9)] + ["What is 0 + 0?"]
        for i, question in enumerate(questions):
            with mlflow.start_span(name="agent") as span:
                span.set_inputs({"question": question})
                answer = f"{2 * (i % 9)}" if i % 3 else f"{2 * (i % 9) + 1}, I think"
                span.set_outputs({"answer": answer})
                s.trace_ids.append(span.trace_id)
        t = s.trace_ids

        def log(i: int, rater: str, name: str, value: Any, why: str) -> Any:
            return mlflow.log_feedback(
                trace_id=t[i], name=name, value=value, rationale=why, source=_human(rater)
            )

        def expect(i: int, rater: str, dim: str, score: float, why: str) -> None:
            s.expected[(t[i], dim, rater)] = (score, why)

        for i in range(8):  # trace 8 and 9: unlabelled traffic
            score = 1 + i % 3
            log(i, "ann", "correct", score, f"ann: answer {i} scores {score}")
            expect(i, "ann", "correctness", score, f"ann: answer {i} scores {score}")
            log(i, "ann", "clear", 3, "ann: clear")
            expect(i, "ann", "clarity", 3, "ann: clear")
        for i in range(4):  # a second rater on four traces, disagreeing on some
            score = 1 + (i + 1) % 3
            log(i, "bob", "correct", score, f"bob: {score}")
            expect(i, "bob", "correctness", score, f"bob: {score}")
        # Edited in place: the edit wins.
        first = mlflow.search_traces(locations=[s.experiment_id], return_type="list")
        by_id = {tr.info.trace_id: tr for tr in first}
        ann0 = next(
            a
            for a in by_id[t[0]].info.assessments
            if a.name == "correct" and a.source.source_id == "ann"
        )
        mlflow.update_assessment(
            trace_id=t[0],
            assessment_id=ann0.assessment_id,
            assessment=Feedback(name="correct", value=3, rationale="ann: edited to 3"),
        )
        expect(0, "ann", "correctness", 3, "ann: edited to 3")
        # Overridden by the same expert: the new value counts, the old one is not valid.
        ann1 = next(
            a
            for a in by_id[t[1]].info.assessments
            if a.name == "correct" and a.source.source_id == "ann"
        )
        mlflow.override_feedback(
            trace_id=t[1],
            assessment_id=ann1.assessment_id,
            value=1,
            rationale="ann: on reflection, wrong",
            source=_human("ann"),
        )
        expect(1, "ann", "correctness", 1, "ann: on reflection, wrong")
        # Deleted: gone.
        bob2 = next(
            a
            for a in by_id[t[2]].info.assessments
            if a.name == "correct" and a.source.source_id == "bob"
        )
        mlflow.delete_assessment(trace_id=t[2], assessment_id=bob2.assessment_id)
        del s.expected[(t[2], "correctness", "bob")]
        # Logged a second time by the same rater: the later one wins.
        log(4, "ann", "correct", 1, "ann: second look, wrong")
        expect(4, "ann", "correctness", 1, "ann: second look, wrong")
        # N/A in words.
        log(5, "bob", "correct", "n/a", "bob: not a question of correctness")
        expect(5, "bob", "correctness", 0, "bob: not a question of correctness")
        # Not expert labels: an LLM judge's, code's, and a name no dimension maps to.
        judge_source = AssessmentSource(
            source_type=AssessmentSourceType.LLM_JUDGE, source_id="openai:/gpt-4.1"
        )
        mlflow.log_feedback(trace_id=t[3], name="correct", value=3, source=judge_source)
        mlflow.log_feedback(trace_id=t[3], name="correct", value=1)
        log(6, "ann", "tone", 2, "ann: tone is not in the rubric")
    finally:
        stack.close()
        mp.undo()
    return s


@pytest.fixture
def tracking_env(seeded: Seeded, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """MLFLOW_TRACKING_URI names the server, as in a team's shell."""
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    with fluent(seeded.server.uri):
        yield seeded.server.uri


def _client(seeded: Seeded) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=seeded.server.uri)


def _runs(seeded: Seeded, kind: str, experiment: str = "judgealign-qa") -> list[Any]:
    client = _client(seeded)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], f"tags.`judgealign.kind` = '{kind}'")
    return list(runs)


def _invoke(args: list[str]) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


# -- labels from traces --------------------------------------------------------------------
def test_expert_labels_from_traces(seeded: Seeded) -> None:
    rubric = ja.load_rubric(str(seeded.rubric_path))
    traces = read_traces(REF, rubric, tracking_uri=seeded.server.uri)
    got = {(lb.item, lb.dimension, lb.rater): (lb.score, lb.rationale) for lb in traces.labels}
    assert got == seeded.expected  # edits, overrides, deletions, raters: as expected
    assert {it.id for it in traces.items} == set(seeded.trace_ids)  # unlabelled ones too
    item = next(it for it in traces.items if it.id == seeded.trace_ids[0])
    assert item.inputs == {"question": "What is 0 + 0?"}
    assert json.loads(item.output) == {"answer": "1, I think"}
    twin = next(it for it in traces.items if it.id == seeded.trace_ids[9])
    assert twin.group == item.group  # one input, one group: folds keep them together
    assert traces.multi_rated
    assert traces.skipped["judge or code feedback"] == 2
    assert traces.skipped["overridden"] == 1
    assert traces.skipped["unmapped names"] == 1
    assert "10 traces" in traces.summary() and "2 rater(s)" in traces.summary()
    # Without a map, assessments named like a dimension are the labels.
    plain = read_traces(f"mlflow:{EXPERIMENT}", rubric, tracking_uri=seeded.server.uri)
    assert plain.labels == []
    # The public API reads the same set.
    labels = ja.load_labels(REF + f"&tracking_uri={seeded.server.uri}", rubric)
    assert {lb.id for lb in labels} == {f"{i}::{d}::{r}" for i, d, r in seeded.expected}


def test_a_bad_expert_value_names_the_trace(
    seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    rubric = ja.load_rubric(str(seeded.rubric_path))
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    with fluent(seeded.server.uri):
        mlflow.set_experiment("bad-labels")
        with mlflow.start_span(name="agent") as span:
            span.set_inputs({"question": "q"})
            span.set_outputs("a")
        mlflow.log_feedback(trace_id=span.trace_id, name="correctness", value=7, source=_human("x"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", seeded.server.uri)
    with pytest.raises(ja.DataError, match=rf"trace {span.trace_id} assessment .* off the scale"):
        read_traces("mlflow:bad-labels", rubric)
    with pytest.raises(ja.DataError, match="no experiment named 'nope'"):
        read_traces("mlflow:nope", rubric)


# -- the round trip ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def aligned(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """``judgealign align --labels mlflow:... --mlflow`` with only MLFLOW_TRACKING_URI set:
    (run id, local judge file)."""
    out = tmp_path_factory.mktemp("align") / "qa-judge.json"
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", seeded.server.uri)
    try:
        args = ["align", "--rubric", str(seeded.rubric_path), "--labels", REF, "--out", str(out)]
        # No context cap: these answers are so short that the cap would leave no example out
        # of the prompt, and the test checks which examples a verdict names.
        text = _invoke([*args, *FAKE, "--context-ratio", "0", "--mlflow"])
    finally:
        mp.undo()
    found = re.search(r"runs:/([0-9a-f]+)/judge\.json", " ".join(text.split()))
    assert found, text
    return found[1], out


def test_align_logs_the_judge_where_mlflow_tracking_uri_points(
    seeded: Seeded, aligned: tuple[str, Path], tracking_env: str
) -> None:
    run_id, local = aligned
    client = _client(seeded)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["judgealign.kind"] == "alignment"
    assert len(run.data.tags["judgealign.judge_sha256"]) == 64
    assert run.data.params["n_labels"] == str(len(seeded.expected))
    assert run.data.metrics["memory.correctness.raters"] == 2
    assert {a.path for a in client.list_artifacts(run_id)} >= {"judge.json", "guidelines.json"}
    (dataset,) = run.inputs.dataset_inputs
    assert dataset.dataset.name == "labels" and dataset.dataset.source_type == "mlflow_traces"
    # runs:/ID/judge.json is accepted wherever a judge file is.
    remote = ja.load_judge(f"runs:/{run_id}/judge.json")
    assert remote.memory_ is not None
    assert remote.memory_.summary() == ja.load_judge(local).memory_.summary()  # type: ignore[union-attr]
    shown = _invoke(["memory", "show", f"runs:/{run_id}/judge.json"])
    assert "correctness" in shown
    # The same judge aligned and logged again updates its run: no duplicate.
    args = ["align", "--rubric", str(seeded.rubric_path), "--labels", REF, "--out", str(local)]
    again = _invoke([*args, *FAKE, "--context-ratio", "0", "--mlflow"])
    assert f"MLflow run {run_id} updated" in " ".join(again.split())
    assert [r.info.run_id for r in _runs(seeded, "alignment")] == [run_id]


def test_aligned_scorers_in_genai_evaluate(
    seeded: Seeded, aligned: tuple[str, Path], tracking_env: str
) -> None:
    run_id, _ = aligned
    scorers = ja.mlflow_scorers(f"runs:/{run_id}/judge.json", names={"correctness": "correct"})
    assert [s.name for s in scorers] == ["correct", "clarity"]
    mlflow.set_experiment(EXPERIMENT)
    traces = mlflow.search_traces(
        locations=[seeded.experiment_id], filter_string="attributes.name = 'agent'"
    )
    result = mlflow.genai.evaluate(data=traces, scorers=scorers)
    assert result.metrics["correct/mean"] > 0
    assert "clarity/mean" in result.metrics
    # The verdicts are on the traces, beside the experts' assessments of the same name.
    after = mlflow.search_traces(locations=[seeded.experiment_id], return_type="list")
    verdicts = {}
    for tr in after:
        for a in tr.info.assessments:
            if a.source.source_type == "LLM_JUDGE" and a.source.source_id.startswith("judgealign"):
                verdicts[(tr.info.trace_id, a.name)] = a
    assert len(verdicts) == 2 * len(seeded.trace_ids)
    fb = verdicts[(seeded.trace_ids[4], "correct")]
    assert fb.metadata["judgealign.dimension"] == "correctness"
    assert fb.metadata["judgealign.judge_sha256"]
    assert fb.rationale
    # What the judgement saw is named, and a trace never sees its own expert label.
    shown = [e for e in fb.metadata["judgealign.examples"].split(",") if e]
    assert shown and all(not e.startswith(seeded.trace_ids[4] + "::") for e in shown)
    assert all(e.rsplit("::", 2)[0] in seeded.trace_ids for e in shown)
    # Results are where MLflow users look: the evaluation run and its metrics.
    runs = mlflow.search_runs(experiment_ids=[seeded.experiment_id])
    assert result.run_id in set(runs["run_id"])
    assert "metrics.correct/mean" in runs.columns
    # A scorer is also called directly, on a trace or on inputs and outputs.
    direct = scorers[0](inputs={"question": "What is 5 + 5?"}, outputs="10")
    assert direct.value in (1, 2, 3) and direct.source.source_type == "LLM_JUDGE"
    on_trace = scorers[0](trace=mlflow.get_trace(seeded.trace_ids[8]))
    assert on_trace.value in (1, 2, 3)


def test_scorers_share_one_loop_across_mlflows_worker_threads(
    seeded: Seeded, tracking_env: str
) -> None:
    """A real HTTP provider (its connection pool belongs to an event loop) behind scorers that
    MLflow calls from its thread pool: every row is scored, within the provider's limit."""
    from judgealign.testing.server import OpenAICompatServer

    rubric = ja.load_rubric(str(seeded.rubric_path))
    rows = [{"inputs": {"question": f"What is {i} * 3?"}, "outputs": str(3 * i)} for i in range(12)]
    with OpenAICompatServer() as srv:
        llm = ja.resolve_llm(f"openai:test-model?base_url={srv.base_url}", concurrency=3)
        scorers = ja.mlflow_scorers(ja.Judge(rubric, model=llm))
        mlflow.set_experiment("threads")
        result = mlflow.genai.evaluate(data=rows, scorers=scorers)
        assert len(srv.chat_requests) == 2 * len(rows)
        assert 1 <= srv.max_in_flight <= 3
    assert result.metrics["correctness/mean"] == 2.0
    assert result.metrics["clarity/mean"] == 2.0


def test_scorers_map_failures_and_na_to_mlflow_conventions(seeded: Seeded) -> None:
    rubric = ja.load_rubric(str(seeded.rubric_path))
    broken = ja.mlflow_scorer(ja.Judge(rubric, model="fake:garbage"), "correctness")
    fb = broken(inputs={"question": "q"}, outputs="a")
    assert fb.value is None and fb.error is not None
    assert fb.error.error_code == "JUDGEALIGN_UNREADABLE_ANSWER"
    na = ja.mlflow_scorer(ja.Judge(rubric, model="fake:constant?score=0"), "correctness")
    fb = na(inputs={"question": "q"}, outputs="a")
    assert fb.value is None and fb.error is None
    assert fb.metadata["judgealign.not_applicable"] == "true"
    # The scorer scores exactly as Judge.predict does.
    judge = ja.Judge(rubric, model="fake:constant")
    (j,) = judge.predict([ja.Item(id="x", output="a", inputs={"question": "q"})], ["clarity"])
    assert (
        ja.mlflow_scorer(judge, "clarity")(inputs={"question": "q"}, outputs="a").value == j.score
    )


def test_score_writes_verdicts_back_once(
    seeded: Seeded, aligned: tuple[str, Path], tracking_env: str, tmp_path: Path
) -> None:
    run_id, _ = aligned
    ref = f"mlflow:experiment={EXPERIMENT}&filter=attributes.name = 'agent'"
    args = ["score", ref, "--judge", f"runs:/{run_id}/judge.json", "--model", "fake:lenient"]
    args += ["--out", str(tmp_path / "j.jsonl"), "--mlflow-feedback"]
    first = " ".join(_invoke(args).split())
    n = len(seeded.trace_ids)
    assert f"MLflow feedback on {n} traces: {2 * n} logged" in first
    again = " ".join(_invoke(args).split())
    assert f"0 logged, 0 updated, {2 * n} unchanged" in again
    traces = mlflow.search_traces(locations=[seeded.experiment_id], return_type="list")
    for tr in traces:
        mine = [
            a
            for a in tr.info.assessments
            if a.source.source_id == "judgealign:fake:lenient" and a.valid is not False
        ]
        assert sorted(a.name for a in mine) == ["clarity", "correctness"]
        assert all(a.value == 3 for a in mine)


def test_evaluate_and_report_log_one_run(seeded: Seeded, tracking_env: str, tmp_path: Path) -> None:
    run_dir = tmp_path / "eval"
    args = ["evaluate", "--rubric", str(seeded.rubric_path), "--labels", REF, *FAKE]
    args += ["--variants", "baseline,full", "--folds", "2", "--resamples", "200"]
    args += ["--learning-curve", "2,4", "--out", str(run_dir), "--mlflow"]
    text = " ".join(_invoke(args).split())
    found = re.search(r"MLflow run ([0-9a-f]+) logged in (\S+)", text)
    assert found and found[2] == tracking_env, text
    run_id = found[1]
    assert not (run_dir / "mlflow.db").exists()  # MLFLOW_TRACKING_URI, not a local store
    client = _client(seeded)
    run = client.get_run(run_id)
    assert run.data.tags["judgealign.kind"] == "evaluation"
    assert run.data.tags["judgealign.version"] == ja.__version__
    assert any(k.startswith("judgealign.judge_sha256.fold-") for k in run.data.tags)
    assert run.data.params["folds"] == "2"
    assert "full.correctness.mae" in run.data.metrics
    assert "human_human.correctness.mae" in run.data.metrics  # two raters on some traces
    names = {d.dataset.name: d.dataset for d in run.inputs.dataset_inputs}
    assert set(names) == {"items", "labels"}
    assert json.loads(names["labels"].source)["uri"] == REF
    history = client.get_metric_history(run_id, "curve.full.correctness.mae")
    assert len({m.step for m in history}) >= 2  # a learning curve, as steps
    table = client.load_table(run.info.experiment_id, "judgements.json", run_ids=[run_id])
    report = ja.EvaluationReport.load(run_dir / "report.json")
    assert len(table) == len(report.judgements)
    # Logged again (report --mlflow): the same run, updated; nothing doubled.
    again = " ".join(_invoke(["report", str(run_dir), "--mlflow"]).split())
    assert f"MLflow run {run_id} updated" in again
    assert [r.info.run_id for r in _runs(seeded, "evaluation")] == [run_id]
    table = client.load_table(run.info.experiment_id, "judgements.json", run_ids=[run_id])
    assert len(table) == len(report.judgements)
    assert len(client.get_metric_history(run_id, "full.correctness.mae")) == 1
    # search_runs works out of the box (the extra installs pandas).
    frame = mlflow.search_runs(experiment_names=["judgealign-qa"])
    assert run_id in set(frame["run_id"])


# -- stores that cannot be used: one line, exit 2 ------------------------------------------
@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished evaluation run folder (fake judge, no MLflow)."""
    run_dir = tmp_path_factory.mktemp("plain") / "run"
    items, labels = ja.load_demo(dimensions=["model_use"])
    ja.evaluate(
        ja.Judge(
            ja.load_rubric("ml-notebook").subset(["model_use"]),
            model="fake:constant",
            embedder="fake",
        ),
        items,
        labels,
        variants=["baseline"],
        folds=2,
        n_resamples=50,
        progress=None,
        run_dir=run_dir,
    )
    return run_dir


@contextlib.contextmanager
def refusing_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.1 that answers every request 403, as a store that refuses
    the caller's credentials does."""

    class Refuse(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(403)
            self.end_headers()
            self.wfile.write(b'{"error_code": "PERMISSION_DENIED"}')

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("case", ["unreachable", "file_uri", "file_env", "refused"])
def test_unusable_stores_are_one_line_errors(
    case: str, run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with contextlib.ExitStack() as stack:
        extra: list[str] = []
        if case == "unreachable":
            extra = ["--tracking-uri", f"http://127.0.0.1:{free_port()}"]
        elif case == "file_uri":
            extra = ["--tracking-uri", (tmp_path / "mlruns").as_uri()]
        elif case == "file_env":
            monkeypatch.setenv("MLFLOW_TRACKING_URI", str(tmp_path / "mlruns"))
        else:
            extra = ["--tracking-uri", stack.enter_context(refusing_server())]
        result = runner.invoke(
            app, ["report", str(run_folder), "--format", "markdown", "--mlflow", *extra]
        )
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "error:" in text and "Traceback" not in text
    error = text[text.index("error:") :]
    assert len(error) < 400  # one line, however the console wraps it
    expected = {
        "unreachable": "is unreachable",
        "file_uri": "file store",
        "file_env": "MLFLOW_TRACKING_URI",
        "refused": "refused access (HTTP 403)",
    }[case]
    assert expected in error
    assert not (tmp_path / "mlruns").exists()


# -- the README's round trip ---------------------------------------------------------------
def readme_blocks(heading: str = "## With MLflow") -> list[tuple[str, str]]:
    """(language, code) of the fenced blocks under ``heading``, in order."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = text.split(heading + "\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```(\w+)\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def test_readme_round_trip(
    seeded: Seeded,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The README's MLflow section, as written: Python blocks run in one namespace, the
    `judgealign` command line through the CLI, with only MLFLOW_TRACKING_URI set."""
    import shlex

    blocks = readme_blocks()
    assert [lang for lang, _ in blocks] == ["python", "bash", "python"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", seeded.server.uri)
    namespace: dict[str, Any] = {"__name__": "readme"}
    try:
        for lang, code in blocks:
            if lang == "python":
                exec(compile(code, "README.md", "exec"), namespace)
                continue
            command = " ".join(
                line.rstrip("\\").strip()
                for line in code.splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            )
            words = shlex.split(command)
            assert words[0] == "judgealign"
            _invoke(words[1:])
    finally:
        mlflow.set_tracking_uri(None)
    out = capsys.readouterr().out
    assert namespace["result"].metrics["imputation/mean"] > 0
    assert "HUMAN expert" in out and "LLM_JUDGE judgealign:fake:mimic" in out
    runs = mlflow.search_runs(experiment_names=["notebook-agent", "judgealign-ml-notebook"])
    assert set(runs["tags.judgealign.kind"].dropna()) == {"alignment"}
    assert len(runs) == 2  # the alignment run and MLflow's evaluation run
