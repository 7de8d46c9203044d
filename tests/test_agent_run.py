"""Agent runs end to end on the fake providers: scoreboard figures against hand computation,
failures as data, resume (in process and after kill -9), judges per dimension, provenance,
gaps, execution, and the outputs (HTML, MLflow)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import judgealign as ja
from agent_fixtures import DIMS, fit_judge, notebook_text, read_jsonl, write_suite
from judgealign.agent import AgentTask, CallableAgent, load_suite, run_agent
from judgealign.agent.adapters import ReplayAgent
from judgealign.agent.runner import AgentRun
from judgealign.errors import ConfigError, DataError
from judgealign.evaluation.bootstrap import bootstrap_ci
from judgealign.providers.types import ChatRequest
from judgealign.testing.fake import FakeLLM, allowed_scores, failing


@pytest.fixture(scope="module")
def judge_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit_judge(tmp_path_factory.mktemp("judge") / "judge.json")


def six_cases() -> Any:
    return load_suite("example").select(
        ["churn-missing", "churn-complete", "churn-brief", "houses-missing", "sales-complete"]
    )


def test_scoreboard_figures_match_hand_computation(judge_file: Path, tmp_path: Path) -> None:
    suite = six_cases()
    board = run_agent(suite, "replay:example/v1", judge_file, tmp_path / "v1")
    assert board.version == "v1" and board.notebooks_total == 6 and board.cases_total == 5
    assert (tmp_path / "v1" / "scoreboard.json").is_file()
    assert (tmp_path / "v1" / "report.html").is_file()
    rubric = ja.load_rubric("ml-notebook")
    for dim in DIMS:
        scale = rubric.dimension(dim).scale
        js = [(nb.case, j) for nb in board.notebooks for j in nb.judgements if j.dimension == dim]
        assert len(js) == 6
        values = [float(j.score) for _, j in js if j.score != 0]
        cases = [c for c, j in js if j.score != 0]
        d = board.dimension(dim)
        expected = bootstrap_ci(values, groups=cases, seed=0)
        assert d.mean is not None and d.mean.unit == "cluster"
        assert d.mean.estimate == pytest.approx(sum(values) / len(values))
        assert (d.mean.low, d.mean.high) == pytest.approx((expected.low, expected.high))
        assert d.mean.n_groups == len(set(cases))
        assert d.na == 6 - len(values) and d.na_rate == pytest.approx(d.na / 6)
        assert d.lowest == pytest.approx(sum(v == scale.min for v in values) / len(values))
    brief = board.case("churn-brief")
    scores = [
        j.score
        for nb in board.notebooks
        if nb.case == "churn-brief"
        for j in nb.judgements
        if j.dimension == "model_training"
    ]
    assert brief.generated == 2 and brief.scores["model_training"] == pytest.approx(sum(scores) / 2)
    churn = next(t for t in board.tags if t.tag == "churn")
    assert churn.cases == 3 and churn.n["model_training"] == 4
    # Reloading gives the same board.
    again = ja.Scoreboard.load(tmp_path / "v1")
    assert again.dims == board.dims and again.run_dir == tmp_path / "v1"


def _judge_handler(request: ChatRequest) -> str:
    text = request.messages[-1].content
    levels = allowed_scores(request)
    if "LEAK" in text:
        why = "The imputer is fitted on the full data before the split, leaking test rows."
        return json.dumps({"rationale": why, "score": min(v for v in levels if v > 0)})
    if "SINGLE" in text:
        why = "No cross-validation at all: a single fit with fixed hyperparameters."
        return json.dumps({"rationale": why, "score": 2})
    return json.dumps({"rationale": "Clean and correct.", "score": max(levels)})


def counting_judge(dims: tuple[str, ...] = DIMS) -> tuple[ja.Judge, FakeLLM]:
    llm = FakeLLM(handler=_judge_handler)
    rubric = ja.load_rubric("ml-notebook").subset(list(dims))
    return ja.Judge(rubric, model=llm, embedder="fake"), llm


def test_failures_are_recorded_never_raised(tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(tmp_path / "s", [{"id": i} for i in ("ok", "crash", "slow", "junk", "none")])
    )

    async def agent(task: AgentTask) -> Any:
        if task.case.id == "crash":
            raise RuntimeError("the agent hit a bug")
        if task.case.id == "slow":
            import asyncio

            await asyncio.sleep(30)
        if task.case.id == "junk":
            return "{this is not a notebook"
        if task.case.id == "none":
            return None  # and writes nothing
        return notebook_text("x = 1  # SINGLE")

    judge, _ = counting_judge()
    board = run_agent(suite, CallableAgent(agent), judge, tmp_path / "run", timeout=1.0)
    failures = {nb.case: (nb.failure, nb.reason) for nb in board.notebooks if nb.status != "ok"}
    assert failures["crash"] == ("crash", "RuntimeError: the agent hit a bug")
    assert failures["slow"] == ("timeout", "no notebook within 1 s")
    assert failures["junk"][0] == "invalid" and "not notebook JSON" in failures["junk"][1]
    assert failures["none"][0] == "invalid" and "wrote no notebook" in failures["none"][1]
    assert board.cases_failed == 4 and board.notebooks_failed == 4
    assert board.failures == {"crash": 1, "invalid": 2, "timeout": 1}
    assert board.dimension("model_training").scored == 1
    assert "ok" not in failures


def test_resume_redoes_nothing_and_retries_only_what_it_should(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s", [{"id": "a", "notebooks": 2}, {"id": "b"}]))
    calls: list[str] = []
    flaky = {"b": 1}

    def agent(task: AgentTask) -> str:
        calls.append(f"{task.case.id}/{task.index}")
        if task.case.id == "b" and flaky["b"]:
            flaky["b"] -= 1
            raise RuntimeError("transient agent bug")
        return notebook_text(f"x = {task.index}  # LEAK")

    judge, llm = counting_judge()
    run_agent(suite, CallableAgent(agent), judge, tmp_path / "run")
    assert sorted(calls) == ["a/1", "a/2", "b/1"] and len(llm.calls) == 4
    calls.clear()
    llm.calls.clear()
    board = run_agent(suite, CallableAgent(agent), judge, tmp_path / "run")
    assert calls == [] and llm.calls == []  # a recorded crash is a result, kept
    assert board.cases_failed == 1
    board = run_agent(suite, CallableAgent(agent), judge, tmp_path / "run", retry_failed=True)
    assert calls == ["b/1"] and len(llm.calls) == 2 and board.cases_failed == 0
    lines = read_jsonl(tmp_path / "run" / "judgements.jsonl")
    assert len(lines) == 6  # 3 notebooks x 2 dimensions, none judged twice


def test_provider_failures_of_a_chat_agent_are_retried_on_resume(tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s", [{"id": "a"}]))
    script: list[Any] = [failing(401, transient=False)]

    def answer(request: ChatRequest) -> str:
        return "```python\nx = 1\n```"

    agent_llm = FakeLLM(handler=answer, script=script)
    judge, _ = counting_judge()
    board = run_agent(suite, ja.ChatAgent(agent_llm), judge, tmp_path / "run")
    assert board.notebooks[0].failure == "provider"
    board = run_agent(suite, ja.ChatAgent(agent_llm), judge, tmp_path / "run")
    assert board.notebooks[0].status == "ok" and board.usage_generation.calls == 1


def test_a_resume_under_other_settings_is_refused(judge_file: Path, tmp_path: Path) -> None:
    suite = load_suite("example").select(["churn-missing"])
    run_agent(suite, "replay:example/v1", judge_file, tmp_path / "run")
    with pytest.raises(ConfigError, match="was made with other settings"):
        run_agent(suite, "replay:example/v2", judge_file, tmp_path / "run")
    other = fit_judge(tmp_path / "other.json", dims=("model_training",))
    with pytest.raises(ConfigError, match="other settings"):
        run_agent(suite, "replay:example/v1", other, tmp_path / "run", version="v1")


KILL_AGENT = """
import json, os, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
with open(args["--log"], "a") as fh:
    fh.write(args["--case"] + "\\n")
if args["--case"] == "c3" and os.environ.get("AGENT_HANG"):
    time.sleep(120)
cells = [{"cell_type": "code", "source": "x = 1  # " + args["--case"], "metadata": {},
          "outputs": [], "execution_count": None}]
json.dump({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells},
          open(args["--out"], "w"))
"""


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen(
        [sys.executable, "-c", "from judgealign.cli.main import app; app()", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "160", **(env or {})},
    )


def test_resume_after_kill_9_regenerates_and_rescores_nothing(
    judge_file: Path, tmp_path: Path
) -> None:
    suite = write_suite(tmp_path / "s", [{"id": f"c{i}"} for i in range(1, 5)])
    script = tmp_path / "agent.py"
    script.write_text(KILL_AGENT, encoding="utf-8")
    log = tmp_path / "calls.log"
    run = tmp_path / "run"
    args = [
        "agent", "run", "--cases", str(suite), "--judge", str(judge_file), "--out", str(run),
        "--agent", f"cmd:{sys.executable} {script} --case {{case}} --out {{notebook}} --log {log}",
        "--concurrency", "1", "--cache-dir", str(tmp_path / "cache"),
    ]  # fmt: skip
    proc = _cli(args, {"AGENT_HANG": "1"})
    deadline = time.monotonic() + 90
    judged = run / "judgements.jsonl"
    while time.monotonic() < deadline:
        done = read_jsonl(judged) if judged.exists() else []
        if len(done) >= 4 and log.exists() and "c3" in log.read_text():
            break
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert log.read_text().split() == ["c1", "c2", "c3"]
    before = read_jsonl(judged)
    with (run / "generations.jsonl").open("a") as fh:
        fh.write('{"case": "c3", "ind')  # a torn line, as a kill mid-write leaves
    proc = _cli(args)
    output = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, output
    assert log.read_text().split() == ["c1", "c2", "c3", "c3", "c4"]
    after = read_jsonl(judged)
    assert after[: len(before)] == before
    keys = [(r["case"], r["judgement"]["dimension"]) for r in after]
    assert len(keys) == len(set(keys)) == 8  # every notebook x dimension judged exactly once
    board = json.loads((run / "scoreboard.json").read_text())
    assert board["notebooks_failed"] == 0


def test_a_notebook_written_but_not_recorded_is_adopted(judge_file: Path, tmp_path: Path) -> None:
    suite = load_suite(write_suite(tmp_path / "s", [{"id": "a"}]))
    target = tmp_path / "run" / "notebooks" / "a" / "1.ipynb"
    target.parent.mkdir(parents=True)
    target.write_text(notebook_text(), encoding="utf-8")
    calls: list[int] = []
    agent = CallableAgent(lambda t: calls.append(1) or notebook_text(), name="x")
    board = run_agent(suite, agent, judge_file, tmp_path / "run")
    assert calls == [] and board.notebooks[0].status == "ok"
    assert read_jsonl(tmp_path / "run" / "generations.jsonl")[0]["recovered"] is True


def test_one_judge_per_dimension_and_provenance(judge_file: Path, tmp_path: Path) -> None:
    one = fit_judge(tmp_path / "imp.json", dims=("data_imputation",))
    two = fit_judge(tmp_path / "train.json", dims=("model_training",))
    suite = load_suite("example").select(["churn-missing", "houses-missing"])
    board = run_agent(suite, "replay:example/v1", [one, two], tmp_path / "run")
    assert board.dimensions == ("data_imputation", "model_training")
    files = {j.dimensions: j.file for j in board.judges}
    assert files == {
        ("data_imputation",): "judges/01-imp.json",
        ("model_training",): "judges/02-train.json",
    }
    for nb in board.notebooks:
        assert nb.judges == {
            "data_imputation": files[("data_imputation",)],
            "model_training": files[("model_training",)],
        }
        for j in nb.judgements:
            assert j.guidelines, "an aligned judge shows its guidelines"
            assert j.episodes, "and expert-scored examples"
            for g in j.guidelines:
                assert board.guidelines[g]  # the text each judgement saw, kept
    copy = ja.load_judge(tmp_path / "run" / files[("model_training",)])
    assert copy.rubric.dimension_ids == ("model_training",)
    with pytest.raises(DataError, match="served by two judges"):
        AgentRun(suite, "replay:example/v1", [judge_file, two], tmp_path / "x")
    with pytest.raises(ConfigError, match="has no judge"):
        AgentRun(suite, "replay:example/v1", one, tmp_path / "x", dimensions=["model_use"])


def test_case_dimensions_limit_what_is_judged(tmp_path: Path) -> None:
    suite = load_suite(
        write_suite(tmp_path / "s", [{"id": "a", "dimensions": ["model_training"]}, {"id": "b"}])
    )
    judge, llm = counting_judge()
    board = run_agent(suite, CallableAgent(lambda t: notebook_text()), judge, tmp_path / "run")
    assert [j.dimension for j in board.notebooks[0].judgements] == ["model_training"]
    assert len(board.notebooks[1].judgements) == 2 and len(llm.calls) == 3
    assert board.case("a").dimensions == ("model_training",)


def test_gaps_group_low_score_reasons_with_counts_and_links(tmp_path: Path) -> None:
    cases = [{"id": f"leak{i}"} for i in range(3)] + [{"id": f"one{i}"} for i in range(2)]
    suite = load_suite(write_suite(tmp_path / "s", [*cases, {"id": "clean"}]))

    def agent(task: AgentTask) -> str:
        tag = "LEAK" if task.case.id.startswith("leak") else "SINGLE"
        return notebook_text(f"x = 1  # {tag if task.case.id != 'clean' else 'fine'}")

    judge, _ = counting_judge(("data_imputation",))
    board = run_agent(suite, CallableAgent(agent), judge, tmp_path / "run")
    gaps = board.gaps_for("data_imputation")
    assert [(g.count, g.cases) for g in gaps] == [
        (3, ("leak0", "leak1", "leak2")),
        (2, ("one0", "one1")),
    ]
    assert "imputer is fitted on the full data" in gaps[0].reason
    assert gaps[0].mean_score == 1.0 and gaps[1].mean_score == 2.0
    assert gaps[0].notebooks == ("leak0/1", "leak1/1", "leak2/1")
    page = board.to_html()
    assert "href='#nb-leak0-1'" in page and "id='nb-leak0-1'" in page
    strict = run_agent(
        suite,
        CallableAgent(agent),
        judge,
        tmp_path / "run",
        gap_thresholds={"data_imputation": 1},
    )
    assert [g.count for g in strict.gaps] == [3]


def test_execution_outputs_reach_the_judge_and_errors_are_recorded(tmp_path: Path) -> None:
    pytest.importorskip("nbclient")
    suite = load_suite(write_suite(tmp_path / "s", [{"id": "ok"}, {"id": "error"}, {"id": "slow"}]))
    code = {
        "ok": "import os\nprint('rows-seen', len(open('data/t.csv').readlines()))",
        "error": "raise ValueError('bad column')",
        "slow": "import time\ntime.sleep(60)",
    }
    judge, llm = counting_judge(("model_training",))
    agent = CallableAgent(lambda t: notebook_text(code[t.case.id]))
    board = run_agent(suite, agent, judge, tmp_path / "run", execute=True, execute_timeout=4)
    status = {nb.case: nb.execution.status for nb in board.notebooks if nb.execution}
    assert status == {"ok": "ok", "error": "error", "slow": "timeout"}
    error = next(nb for nb in board.notebooks if nb.case == "error")
    assert error.execution is not None and "ValueError: bad column" in error.execution.reason
    assert error.executed == "executed/error/1.ipynb"
    seen = "\n".join(r.messages[-1].content for r in llm.calls)
    assert "rows-seen 4" in seen and "ValueError" in seen
    assert board.execution_errors == 2 and board.dimension("model_training").judged == 3


def test_html_report_is_self_contained_and_escapes_untrusted_text(tmp_path: Path) -> None:
    evil = "<script>alert(1)</script></pre><img src=x onerror=alert(2)>"
    suite = load_suite(write_suite(tmp_path / "s", [{"id": "a"}]))

    def handler(request: ChatRequest) -> str:
        return json.dumps({"rationale": f"says {evil}", "score": 1})

    judge = ja.Judge(
        ja.load_rubric("ml-notebook").subset(["model_training"]),
        model=FakeLLM(handler=handler),
        embedder="fake",
    )
    agent = CallableAgent(lambda t: notebook_text(f"print('{evil}')"))
    board = run_agent(suite, agent, judge, tmp_path / "run")
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;/pre&gt;&lt;img src=x" in page
    assert not re.search(r"(src|href)=['\"]https?:", page)
    assert page == board.to_html()


def test_mlflow_logs_a_run_per_version_and_the_comparison(judge_file: Path, tmp_path: Path) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    suite = load_suite("example").select(["churn-missing", "sales-missing"])
    a = run_agent(suite, ReplayAgent("example/v1"), judge_file, tmp_path / "v1")
    b = run_agent(suite, ReplayAgent("example/v2"), judge_file, tmp_path / "v2")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_a = a.log_mlflow(tracking_uri=uri)
    b.log_mlflow(tracking_uri=uri)
    cmp = ja.compare_agents(a, b, out=tmp_path / "cmp")
    run_c = cmp.log_mlflow(tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    logged = client.get_run(run_a)
    assert logged.data.params["version"] == "v1"
    assert logged.data.metrics["model_training.mean"] == pytest.approx(
        a.dimension("model_training").mean.estimate  # type: ignore[union-attr]
    )
    artifacts = {f.path for f in client.list_artifacts(run_a)}
    assert {"scoreboard.json", "report.html", "notebooks", "judges"} <= artifacts
    comparison = client.get_run(run_c)
    assert comparison.data.tags["judgealign.kind"] == "agent-comparison"
    assert "model_training.delta" in comparison.data.metrics
    experiment = client.get_experiment(logged.info.experiment_id)
    assert experiment.name == "judgealign-agent-example"
    # Logging the same version again updates its run, never a second one.
    assert a.log_mlflow(tracking_uri=uri) == run_a
    assert len(client.search_runs([logged.info.experiment_id])) == 3


def test_report_renders_in_headless_chromium(judge_file: Path, tmp_path: Path) -> None:
    import shutil

    browser = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    if browser is None:
        pytest.skip("no headless chromium: apt-get install chromium")
    suite = load_suite("example").select(["churn-brief", "sales-complete"])
    run_agent(suite, "replay:example/v1", judge_file, tmp_path / "run")
    page = tmp_path / "run" / "report.html"
    dom = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    for anchor in ("nb-churn-brief-1", "nb-churn-brief-2", "nb-sales-complete-1"):
        assert f'id="{anchor}"' in dom
    assert dom.count('<article class="ja-nb">') == 3
    assert 'class="scoreboard"' in dom and "Gaps" in dom


def test_a_sync_agent_that_never_returns_does_not_hold_the_run(tmp_path: Path) -> None:
    import threading

    suite = load_suite(write_suite(tmp_path / "s", [{"id": "stuck"}, {"id": "fine"}]))
    release = threading.Event()

    def agent(task: AgentTask) -> str:
        if task.case.id == "stuck":
            release.wait(60)  # a hung agent (the test lets it go at the end)
        return notebook_text()

    judge, _ = counting_judge()
    started = time.monotonic()
    board = run_agent(suite, CallableAgent(agent), judge, tmp_path / "run", timeout=1.0)
    assert time.monotonic() - started < 30
    release.set()
    assert [nb.failure for nb in board.notebooks] == ["timeout", None]


def test_a_run_grows_from_some_cases_to_the_whole_suite(judge_file: Path, tmp_path: Path) -> None:
    suite = load_suite("example")
    first = run_agent(suite.select(["churn-missing"]), "replay:example/v1", judge_file, tmp_path)
    assert first.cases_total == 1
    both = suite.select(["churn-missing", "houses-missing"])
    second = run_agent(both, "replay:example/v1", judge_file, tmp_path)
    assert second.cases_total == 2 and second.notebooks[0] == first.notebooks[0]
    assert len(read_jsonl(tmp_path / "judgements.jsonl")) == 4


def test_a_run_folder_can_be_moved(tmp_path: Path) -> None:
    pytest.importorskip("nbclient")
    import shutil

    suite = load_suite(write_suite(tmp_path / "s", [{"id": "a"}]))
    judge, _ = counting_judge(("model_training",))
    agent = CallableAgent(lambda t: notebook_text("print('moved')"))
    run_agent(suite, agent, judge, tmp_path / "run", execute=True, execute_timeout=30)
    shutil.move(tmp_path / "run", tmp_path / "archive")
    calls: list[int] = []
    again = run_agent(
        suite,
        CallableAgent(lambda t: calls.append(1) or notebook_text()),
        judge,
        tmp_path / "archive",
        execute=True,
    )
    assert calls == [] and again.notebooks[0].executed == "executed/a/1.ipynb"
    assert (tmp_path / "archive" / "executed" / "a" / "1.ipynb").is_file()


def test_mlflow_tracking_uri_from_the_environment(
    judge_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    suite = load_suite("example").select(["churn-missing"])
    board = run_agent(suite, ReplayAgent("example/v1"), judge_file, tmp_path / "v1")
    uri = f"sqlite:///{tmp_path / 'team.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    run_id = board.log_mlflow()
    assert MlflowClient(tracking_uri=uri).get_run(run_id).data.params["version"] == "v1"
    assert not (tmp_path / "v1" / "mlflow.db").exists()
