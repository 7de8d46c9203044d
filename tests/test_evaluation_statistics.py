"""The reports' statistics: cluster bootstrap by default, repeated cross-validation, human raters.

Fake providers only; every report is built by ``evaluate`` as a user would build it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import ConfigError
from judgealign.evaluation.experiment import evaluate
from judgealign.judge.judge import Judge
from judgealign.providers import resolve_embedder, resolve_llm
from judgealign.report.console import render_console
from judgealign.report.html import render_html
from judgealign.report.markdown import render_markdown
from judgealign.report.mlflow_log import report_metrics, report_params
from judgealign.report.model import EvaluationReport
from judgealign.report.views import Report
from judgealign.rubric import load_rubric
from judgealign.testing import FakeEmbedder, FakeLLM

DIM = "model_use"
TEMPLATES = {
    1: "imputer fit on full data before split leakage scaler fit everything",
    2: "mean imputation everywhere after split single strategy no check",
    3: "pipeline imputer per column fitted on training fold only checked",
}


def grouped_data(
    n_groups: int = 12, per_group: int = 3, raters: int = 1
) -> tuple[list[Item], list[Label]]:
    """``per_group`` items per input group; each group has its own typical score, so items of
    a group are alike (what the cluster bootstrap is for). ``raters`` > 1: several experts,
    who disagree by a level on some items."""
    items, labels = [], []
    for g in range(n_groups):
        for v in range(per_group):
            score = 1 + (g + (v == per_group - 1)) % 3
            iid = f"case{g}-nb{v}"
            items.append(
                Item(id=iid, output=f"{TEMPLATES[score]} notebook {g} run {v}", group=f"case{g}")
            )
            for r in range(raters):
                given = score if (r + g + v) % 4 else min(3, score + 1)
                labels.append(
                    Label(
                        item=iid,
                        dimension=DIM,
                        score=given,
                        rationale=f"{TEMPLATES[score].split()[0]} pattern",
                        rater=f"rater{r}",
                    )
                )
    return items, labels


def judge_with(llm: FakeLLM, cache_dir: Path | None = None) -> Judge:
    rubric = load_rubric("ml-notebook").subset([DIM])
    return Judge(
        rubric,
        model=resolve_llm(llm, cache_dir=cache_dir),
        embedder=resolve_embedder(FakeEmbedder(), cache_dir=cache_dir),
        similarity_floor=0.0,
    )


def run(items: list[Item], labels: list[Label], **kw) -> EvaluationReport:  # type: ignore[no-untyped-def]
    llm = kw.pop("llm", None) or FakeLLM("mimic", params={"fallback": "lenient"})
    judge = judge_with(llm, kw.pop("cache_dir", None))
    kw.setdefault("n_resamples", 500)
    kw.setdefault("variants", ["baseline", "full"])
    kw.setdefault("folds", 3)
    return evaluate(judge, items, labels, progress=None, **kw)


@pytest.fixture(scope="module")
def clustered() -> EvaluationReport:
    return run(*grouped_data())


def test_items_that_share_inputs_are_resampled_by_group_by_default(
    clustered: EvaluationReport,
) -> None:
    assert clustered.config.bootstrap == "cluster"
    full = clustered.result("full", DIM)
    assert full is not None and full.mae is not None
    assert full.mae.unit == "cluster" and full.mae.n_groups == 12 and full.mae.expanded
    cmp = clustered.comparison(DIM, "full")
    assert cmp is not None and cmp.delta.unit == "cluster" and cmp.delta.n_groups == 12
    assert cmp.n_repeats == 1 and cmp.delta_repeats == []

    items, labels = grouped_data()
    by_item = run(items, labels, bootstrap="item")
    item_full = by_item.result("full", DIM)
    assert by_item.config.bootstrap == "item"
    assert item_full is not None and item_full.mae is not None and item_full.mae.unit == "item"
    # Same errors, same estimate; the groups' items are alike, so the honest interval is wider.
    assert item_full.mae.estimate == pytest.approx(full.mae.estimate)
    assert (full.mae.high - full.mae.low) > (item_full.mae.high - item_full.mae.low)
    # A set with no shared inputs has nothing to cluster: auto resamples items.
    singles = [it.model_copy(update={"group": None}) for it in items]
    assert run(singles, labels).config.bootstrap == "item"


def test_every_report_names_the_resampling_method(clustered: EvaluationReport) -> None:
    buf = io.StringIO()
    render_console(clustered, Console(file=buf, width=220))
    phrase = "bootstrap over 12 input groups"
    assert phrase in buf.getvalue()
    assert phrase in render_markdown(clustered)
    assert phrase in render_html(clustered)
    data = json.loads(clustered.to_json())
    assert data["config"]["bootstrap"] == "cluster"
    assert data["results"][0]["mae"]["unit"] == "cluster"
    params = report_params(clustered)
    assert params["bootstrap"] == "cluster" and phrase in params["statistics"]


def test_the_item_bootstrap_on_shared_inputs_says_it_is_too_narrow() -> None:
    report = run(*grouped_data(), bootstrap="item")
    assert "intervals are too narrow" in report.summary(width=220)
    assert "Items resampled one by one" in render_html(report)


def test_bad_bootstrap_choices_stop_before_any_model_call() -> None:
    llm = FakeLLM("mimic")
    items, labels = grouped_data()
    with pytest.raises(ConfigError, match="bootstrap 'groups'"):
        run(items, labels, llm=llm, bootstrap="groups")
    with pytest.raises(ConfigError, match="draw size"):
        run(items, labels, llm=llm, bootstrap="cluster", draw_size=100)
    assert llm.calls == []


def test_repeats_show_the_alignment_spread_and_resume_without_new_calls(tmp_path: Path) -> None:
    items, labels = grouped_data()
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    first = FakeLLM("mimic", params={"fallback": "lenient"})
    two = run(items, labels, llm=first, repeats=2, run_dir=run_dir, cache_dir=cache)
    assert two.config.repeats == 2
    full = two.result("full", DIM)
    assert full is not None and len(full.mae_repeats) == 2
    cmp = two.comparison(DIM, "full")
    assert cmp is not None and cmp.n_repeats == 2 and len(cmp.delta_repeats) == 2
    assert cmp.delta.estimate == pytest.approx(np.mean(cmp.delta_repeats))
    # The baseline is judged once; each repeat judges every item with the aligned variant.
    per = {(r.variant, r.repeat) for r in two.judgements}
    assert per == {("baseline", 0), ("full", 0), ("full", 1)}
    n_items = len(items)
    assert sum(1 for r in two.judgements if r.variant == "full") == 2 * n_items
    assert (run_dir / "judges" / "fold-0-r1.judge.json").exists()
    assert (run_dir / "judges" / "fold-0.judge.json").exists()
    # Repeat 2 deals the groups into other folds.
    folds = {r: {} for r in (0, 1)}  # type: dict[int, dict[str, int]]
    for rec in two.judgements:
        if rec.variant == "full":
            folds[rec.repeat][rec.judgement.item] = rec.fold
    assert folds[0] != folds[1]
    # Every report says there were repeats and shows the spread.
    text = two.summary(width=220)
    assert "2 repeats of the grouped CV" in text and " sd " in text
    assert "MAE in each of the 2 repeats" in render_markdown(two)
    page = render_html(two)
    assert "across 2 repeats" in page and "The first of 2 repeats" in page
    assert "full.model_use.mae_sd_repeats" in report_metrics(two)

    # The same command again: everything comes from the run folder.
    again = FakeLLM("mimic", params={"fallback": "lenient"})
    run(items, labels, llm=again, repeats=2, run_dir=run_dir, cache_dir=cache)
    assert again.calls == []
    # One more repeat: only its fits and its aligned judgements cost calls (no baseline).
    more = FakeLLM("mimic", params={"fallback": "lenient"})
    three = run(items, labels, llm=more, repeats=3, run_dir=run_dir, cache_dir=cache)
    assert three.config.repeats == 3 and len(three.judgements) == 4 * n_items
    reflection = [c for c in more.calls if "You study how expert" in c.messages[0].content]
    assert reflection  # the third repeat's folds were aligned
    assert len(more.calls) - len(reflection) == n_items  # its judgements, no baseline's
    assert {r.repeat for r in three.judgements if r.variant == "baseline"} == {0}


def test_one_repeat_is_the_plain_report(clustered: EvaluationReport) -> None:
    full = clustered.result("full", DIM)
    assert clustered.config.repeats == 1 and full is not None and full.mae_repeats == []
    assert "repeats of the grouped CV" not in clustered.summary(width=220)


def test_multi_rater_labels_give_the_human_reference() -> None:
    items, labels = grouped_data(raters=3)
    report = run(items, labels)
    ref = next(r for r in report.references if r.dimension == DIM)
    assert ref.n_multi_rated == len(items) and ref.n_raters == 3
    assert ref.human_human is not None and ref.human_human_mae is not None
    assert ref.human_human.unit == "cluster"
    assert ref.human_human.low <= ref.human_human_mae <= ref.human_human.high
    assert ref.human_alpha is not None and 0 < ref.human_alpha < 1
    # The judge is scored against the raters' mean, as before.
    assert report.config.n_labels == 3 * len(items)
    text = report.summary(width=220)
    assert "3 raters on 36 items" in text and "Krippendorff's α" in text
    assert "Human raters" in render_html(report)
    metrics = report_metrics(report)
    assert f"human_human.{DIM}.alpha" in metrics and f"human_human.{DIM}.mae_low" in metrics
    # One rater per item: no human reference (and no claim of one).
    single = next(r for r in run(*grouped_data()).references if r.dimension == DIM)
    assert single.human_human is None and single.human_alpha is None


def test_a_version_2_report_loads_as_an_item_bootstrap_single_repeat_run(
    clustered: EvaluationReport, tmp_path: Path
) -> None:
    data = json.loads(clustered.to_json())
    data["schema_version"] = 2
    data["config"].pop("bootstrap")
    data["config"].pop("repeats")
    for r in data["results"]:
        for key in ("mae", "bias"):
            for field in ("unit", "n_groups", "expanded"):
                r[key].pop(field)
        r.pop("mae_repeats")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    old = Report.load(path)
    assert old.config.bootstrap == "item" and old.config.repeats == 1
    full = old.result("full", DIM)
    assert full is not None and full.mae is not None and full.mae.unit == "item"
    assert "bootstrap over items" in old.summary(width=220)


def test_the_cli_runs_repeats_and_says_what_they_cost(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from judgealign.cli.main import app

    runner = CliRunner()
    helped = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert "--repeats" in helped.output and "R x the alignment" in helped.output
    assert "--bootstrap" in helped.output
    items, labels = grouped_data(n_groups=6)
    items_file, labels_file = tmp_path / "items.jsonl", tmp_path / "labels.jsonl"
    items_file.write_text(
        "".join(
            json.dumps({"id": it.id, "output": it.output, "group": it.group}) + "\n" for it in items
        ),
        encoding="utf-8",
    )
    labels_file.write_text(
        "".join(
            json.dumps({"item": lb.item, "dimension": lb.dimension, "score": lb.score}) + "\n"
            for lb in labels
        ),
        encoding="utf-8",
    )
    out = tmp_path / "run"
    args = ["evaluate", "--rubric", "ml-notebook", "--items", str(items_file), "--labels"]
    args += [str(labels_file), "--dimension", DIM, "--model", "fake:mimic", "--embedder", "fake"]
    args += ["--variants", "baseline,full", "--folds", "2", "--resamples", "300"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--out", str(out)]
    done = runner.invoke(app, [*args, "--repeats", "2"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "2 repeats of the grouped CV" in done.output and "6 input groups" in done.output
    saved = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert saved["config"]["repeats"] == 2 and saved["config"]["bootstrap"] == "cluster"
    bad = runner.invoke(app, [*args, "--bootstrap", "groups"])
    assert bad.exit_code == 2 and "choose auto, item, cluster" in bad.output


class _Stop(BaseException):
    """Stands in for a kill: not an Exception, so nothing on the way catches it."""


def test_an_interrupted_repeat_resumes_where_it_stopped(tmp_path: Path) -> None:
    items, labels = grouped_data(n_groups=6)
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    # Count what the whole run asks, then stop a run partway through its second repeat.
    whole = FakeLLM("mimic", params={"fallback": "lenient"})
    reference = run(items, labels, llm=whole, repeats=2, concurrency=1)
    total = len(whole.calls)
    first = FakeLLM("mimic", params={"fallback": "lenient"})
    answer = first._answer
    budget = {"left": total - 5}

    def stop_late(request):  # type: ignore[no-untyped-def]
        budget["left"] -= 1
        if budget["left"] < 0:
            raise _Stop()
        return answer(request)

    first.handler = stop_late
    with pytest.raises(_Stop):
        run(
            items,
            labels,
            llm=first,
            repeats=2,
            run_dir=run_dir,
            cache_dir=cache,
            concurrency=1,
        )
    assert (run_dir / "judges" / "fold-0-r1.judge.json").exists()  # it was in repeat 2
    second = FakeLLM("mimic", params={"fallback": "lenient"})
    resumed = run(
        items, labels, llm=second, repeats=2, run_dir=run_dir, cache_dir=cache, concurrency=1
    )
    asked_before = {c.model_dump_json() for c in first.calls[:-1]}
    assert not asked_before & {c.model_dump_json() for c in second.calls}
    assert len(second.calls) <= 6
    full_r, full_s = reference.result("full", DIM), resumed.result("full", DIM)
    assert full_r is not None and full_s is not None
    assert full_s.mae_repeats == full_r.mae_repeats


def test_a_comparison_on_one_group_has_no_test_and_says_so(tmp_path: Path) -> None:
    items, labels = grouped_data(n_groups=6)
    # Only the first input's notebooks use a model: one group, nothing to resample.
    labels = [
        lb if lb.item.startswith("case0-") else lb.model_copy(update={"score": 0}) for lb in labels
    ]
    report = run(items, labels, run_dir=tmp_path / "run", llm=FakeLLM("lenient"))
    cmp = report.comparison(DIM, "full")
    assert cmp is not None and cmp.delta.n_groups == 1
    assert np.isnan(cmp.p_value) and np.isnan(cmp.p_holm)
    assert report.plan is not None and not report.plan.dimensions
    assert "fewer than two input groups" in report.plan.skipped[0]
    again = Report.load(tmp_path / "run" / "report.json")  # NaN survives the JSON
    assert again.comparison(DIM, "full") is not None
    text = again.summary(width=220) + render_markdown(again) + render_html(again)
    assert "nan" not in text.lower().replace("nan-", "")
