"""Cross-validated evaluation on the fake provider: variants, leakage guard, resume."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import ConfigError, ProviderError
from judgealign.evaluation.experiment import evaluate
from judgealign.evaluation.runner import Evaluator, LeakageError
from judgealign.judge.judge import Judge
from judgealign.providers import resolve_embedder, resolve_llm
from judgealign.report.model import EvaluationReport
from judgealign.rubric import load_rubric
from judgealign.rubric.model import Rubric
from judgealign.testing import FakeEmbedder, FakeLLM

DIMS = ["data_imputation", "model_use"]

# Items whose words predict the expert score, so retrieval by similarity finds the right
# examples and fake:mimic can copy them: an aligned judge must beat the lenient baseline.
TEMPLATES = {
    1: "imputer fit on full data before split leakage scaler fit everything",
    2: "mean imputation everywhere after split single strategy no check",
    3: "pipeline imputer per column fitted on training fold only checked",
}


def make_data(n_groups: int = 8, per_group: int = 2) -> tuple[list[Item], list[Label]]:
    items, labels = [], []
    for g in range(n_groups):
        for v in range(per_group):
            score = 1 + (g + v) % 3
            iid = f"g{g}-v{v}"
            items.append(
                Item(id=iid, output=f"{TEMPLATES[score]} notebook {g} variant {v}", group=f"g{g}")
            )
            for dim in DIMS:
                labels.append(
                    Label(
                        item=iid,
                        dimension=dim,
                        score=score,
                        rationale=f"Expert: {TEMPLATES[score].split()[0]} pattern.",
                    )
                )
    return items, labels


def model_use_data() -> tuple[Rubric, list[Item], list[Label]]:
    """One dimension, 12 items in 6 groups: 2 folds of 6 labels each."""
    items, labels = make_data(n_groups=6)
    rubric = load_rubric("ml-notebook").subset(["model_use"])
    return rubric, items, [lb for lb in labels if lb.dimension == "model_use"]


def make_judge(
    rubric: Rubric,
    llm: FakeLLM | None = None,
    *,
    reflection_llm: FakeLLM | None = None,
    cache_dir: Path | None = None,
    k: int = 2,
) -> Judge:
    """The judge these tests evaluate: mimic (lenient where it sees no example), providers
    passed in so their calls can be counted, a response cache when ``cache_dir`` is given."""
    model = llm or FakeLLM("mimic", params={"fallback": "lenient"})
    return Judge(
        rubric,
        model=resolve_llm(model, cache_dir=cache_dir),
        reflection_model=None if reflection_llm is None else resolve_llm(reflection_llm),
        embedder=resolve_embedder(FakeEmbedder(), cache_dir=cache_dir),
        k=k,
        similarity_floor=0.0,
    )


def run_evaluation(
    rubric: Rubric,
    items: list[Item],
    labels: list[Label],
    *,
    llm: FakeLLM | None = None,
    reflection_llm: FakeLLM | None = None,
    cache_dir: Path | None = None,
    k: int = 2,
    **kw,  # type: ignore[no-untyped-def]
) -> EvaluationReport:
    judge = make_judge(rubric, llm, reflection_llm=reflection_llm, cache_dir=cache_dir, k=k)
    return evaluate(judge, items, labels, progress=None, **kw)


def test_full_variant_beats_lenient_baseline() -> None:
    rubric = load_rubric("ml-notebook").subset(DIMS)
    items, labels = make_data()
    llm = FakeLLM("mimic", params={"fallback": "lenient"})
    report = run_evaluation(
        rubric,
        items,
        labels,
        folds=4,
        variants=["baseline", "episodic", "full"],
        n_resamples=500,
        llm=llm,
    )
    for dim in DIMS:
        base = report.result("baseline", dim)
        full = report.result("full", dim)
        assert base is not None and full is not None
        assert base.mae is not None and full.mae is not None
        assert full.mae.estimate < base.mae.estimate
        assert base.n_items == len(items)
        cmp = report.comparison(dim, "full")
        assert cmp is not None and cmp.delta.estimate < 0 and 0 < cmp.p_holm <= 1
    assert report.leakage_checked
    # Every judgement of an aligned variant records what it saw.
    aligned = [r for r in report.judgements if r.variant == "full"]
    assert aligned and all(r.judgement.episodes for r in aligned)


def test_failed_reflection_is_reported_per_fold(tmp_path: Path) -> None:
    # A reflection model that never answers (say, a timeout on every batch) leaves the semantic
    # memory empty: the run goes on, and the report says so instead of passing it off as full.
    def refuse(request: object) -> Exception:
        return ProviderError("refl: no answer within 120s", transient=False)

    rubric, items, labels = model_use_data()
    report = run_evaluation(
        rubric,
        items,
        labels,
        folds=2,
        variants=["baseline", "full"],
        n_resamples=200,
        reflection_llm=FakeLLM(handler=refuse),
        run_dir=tmp_path / "run",
    )
    lines = [n for n in report.notes if "reflection failed" in n]
    assert lines == [
        f"fold {f}, model_use: reflection failed on 6 of 6 labels "
        "(provider error: refl: no answer within 120s); 0 guidelines kept"
        for f in (1, 2)
    ]
    full = report.result("full", "model_use")
    assert full is not None and full.n_items == len(items)
    assert "reflection failed on 6 of 6" in (tmp_path / "run" / "report.md").read_text()


def test_episodic_only_run_makes_no_reflection_call(tmp_path: Path) -> None:
    rubric, items, labels = model_use_data()

    def run(variants: list[str], reflection: FakeLLM) -> EvaluationReport:
        return run_evaluation(
            rubric,
            items,
            labels,
            folds=2,
            variants=variants,  # type: ignore[arg-type]
            n_resamples=200,
            llm=FakeLLM("mimic", params={"fallback": "lenient"}),
            reflection_llm=reflection,
            run_dir=tmp_path / "run",
        )

    reflection = FakeLLM("constant")
    report = run(["baseline", "episodic"], reflection)
    assert reflection.calls == []
    assert report.usage_alignment.calls == 0
    episodic = [r for r in report.judgements if r.variant == "episodic"]
    assert episodic and all(r.judgement.episodes and not r.judgement.guidelines for r in episodic)
    # Resuming the run folder with a variant that reads guidelines refits the fold judges
    # (their stored memory has none) instead of scoring "full" without guidelines.
    later = FakeLLM("constant")
    resumed = run(["baseline", "episodic", "full"], later)
    assert later.calls
    full = [r for r in resumed.judgements if r.variant == "full"]
    assert full and all(r.judgement.guidelines for r in full)


def test_baseline_computed_once_and_reused() -> None:
    rubric = load_rubric("ml-notebook").subset(DIMS)
    items, labels = make_data()
    llm = FakeLLM("lenient")
    run_evaluation(
        rubric,
        items,
        labels,
        folds=4,
        variants=["baseline", "semantic", "episodic", "full"],
        n_resamples=200,
        llm=llm,
    )
    judge_calls = [c for c in llm.calls if (c.json_schema or {}).get("title") == "judgement"]
    # baseline once per (item, dim) + three aligned variants once per (item, dim)
    assert len(judge_calls) == 4 * len(items) * len(DIMS)


def test_leak_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    """If alignment saw the test fold, the evaluator must refuse the result."""
    rubric = load_rubric("ml-notebook").subset(DIMS)
    items, labels = make_data()
    real_afit = Judge.afit

    async def leaky_afit(self: Judge, train_labels, train_items, **kw):  # type: ignore[no-untyped-def]
        return await real_afit(self, labels, items, **kw)  # all labels: leaks the test fold

    monkeypatch.setattr(Judge, "afit", leaky_afit)
    ev = Evaluator(make_judge(rubric, FakeLLM("mimic")), folds=4, variants=["full"])
    with pytest.raises(LeakageError):
        ev.run(items, labels)


def _without_volatile(report: EvaluationReport) -> dict:  # type: ignore[type-arg]
    data = json.loads(report.to_json())
    for key in ("created", "wall_seconds", "usage_alignment", "usage_scoring"):
        data.pop(key)
    for rec in data["judgements"]:
        rec["judgement"].pop("usage")
    data["judgements"].sort(
        key=lambda r: (r["variant"], r["judgement"]["item"], r["judgement"]["dimension"])
    )
    return data


class Interrupt(BaseException):
    """Stands in for Ctrl-C / a killed process in the middle of a run."""


def test_resume_after_interrupt_recomputes_nothing(tmp_path: Path) -> None:
    rubric = load_rubric("ml-notebook").subset(DIMS)
    items, labels = make_data()
    run_dir = tmp_path / "run"
    # Judgements come back from the run folder; alignment calls cut short come back from the
    # response cache: either way no model call is made twice.
    cache = tmp_path / "cache"

    reference = run_evaluation(
        rubric,
        items,
        labels,
        folds=4,
        variants=["baseline", "full"],
        n_resamples=300,
        llm=FakeLLM("mimic"),
    )
    full_calls = FakeLLM("mimic")
    run_evaluation(
        rubric,
        items,
        labels,
        folds=4,
        variants=["baseline", "full"],
        n_resamples=300,
        llm=full_calls,
    )
    total = len(full_calls.calls)

    budget = {"n": total // 2}
    first = FakeLLM("mimic")
    real = first._answer

    def stop_midway(request):  # type: ignore[no-untyped-def]
        budget["n"] -= 1
        if budget["n"] < 0:
            raise Interrupt()
        return real(request)

    first.handler = stop_midway
    with pytest.raises(Interrupt):
        run_evaluation(
            rubric,
            items,
            labels,
            folds=4,
            variants=["baseline", "full"],
            n_resamples=300,
            run_dir=run_dir,
            llm=first,
            cache_dir=cache,
        )
    done_before = (run_dir / "judgements.jsonl").read_text().count("\n")
    assert done_before > 0

    second = FakeLLM("mimic")
    resumed = run_evaluation(
        rubric,
        items,
        labels,
        folds=4,
        variants=["baseline", "full"],
        n_resamples=300,
        run_dir=run_dir,
        llm=second,
        cache_dir=cache,
    )
    # No call repeated: what the first run finished (stored, or answered and cached while
    # other calls were still in flight) is not asked again. Only the calls in flight when the
    # interrupt hit (at most the concurrency, 4) may be asked again.
    finished = {r.model_dump_json() for r in first.calls[:-4]}
    assert not finished & {r.model_dump_json() for r in second.calls}
    assert len(first.calls) - 1 + len(second.calls) <= total + 3
    assert _without_volatile(resumed) == _without_volatile(reference)
    # The cost of folds fitted before the interrupt is kept with their judges.
    assert resumed.usage_alignment.all_prompt_tokens == reference.usage_alignment.all_prompt_tokens
    # Scoring cost too sums every process: the judgements stored by the interrupted run
    # count with what they cost then (a resumed run once reported 3 calls against 100 made).
    assert resumed.usage_scoring.all_prompt_tokens == reference.usage_scoring.all_prompt_tokens
    assert resumed.usage_scoring.calls + resumed.usage_scoring.cached_calls >= len(
        reference.judgements
    )
    assert (run_dir / "report.json").exists() and (run_dir / "report.html").exists()

    # Resuming under other settings would mix two experiments in one folder: refused.
    with pytest.raises(ConfigError, match=r"params\.k: - -> 4"):
        run_evaluation(
            rubric,
            items,
            labels,
            k=4,
            folds=4,
            variants=["baseline", "full"],
            n_resamples=300,
            run_dir=run_dir,
            llm=FakeLLM("mimic"),
            cache_dir=cache,
        )


def test_item_ids_containing_separator_do_not_trip_the_leak_guard() -> None:
    # SummEval's item ids are article::system; label ids append ::dimension::rater.
    items, labels = make_data()
    items = [it.model_copy(update={"id": f"doc-{it.group}::{it.id}"}) for it in items]
    labels = [
        lb.model_copy(update={"item": f"doc-g{lb.item.split('-')[0][1:]}::{lb.item}"})
        for lb in labels
    ]
    report = run_evaluation(
        load_rubric("ml-notebook").subset(DIMS),
        items,
        labels,
        folds=4,
        variants=["baseline", "full"],
        n_resamples=200,
        llm=FakeLLM("mimic"),
    )
    assert report.leakage_checked
    full = report.result("full", "data_imputation")
    assert full is not None and full.n_scored == len(items)


def test_label_dimension_and_rater_cannot_contain_separator() -> None:
    with pytest.raises(ValueError, match="must not contain"):
        Label(item="a::b", dimension="x", score=1, rater="r::1")
    assert Label(item="a::b", dimension="x", score=1).id == "a::b::x::expert"


def test_sequential_scoring_keeps_each_items_calls_adjacent_for_kv_reuse() -> None:
    import re

    items, labels = make_data(n_groups=4)
    llm = FakeLLM("mimic")
    run_evaluation(
        load_rubric("ml-notebook").subset(DIMS),
        items,
        labels,
        folds=2,
        variants=["baseline", "full"],
        n_resamples=100,
        concurrency=1,
        llm=llm,
    )
    judged = [c.messages[-1].content for c in llm.calls if '<item id="' in c.messages[-1].content]
    ids = [re.search(r'<item id="([^"]+)"', text).group(1) for text in judged]  # type: ignore[union-attr]
    blocks = [i for n, i in enumerate(ids) if n == 0 or ids[n - 1] != i]
    # Baseline (fold -1) and each fold visit items separately, but within a visit an item's
    # calls are contiguous, and a full call follows the baseline call of the same dimension.
    assert len(blocks) <= 2 * len(items)
    aligned = 0
    for prev, cur in itertools.pairwise(judged):
        cut = min(
            (cur.find(m) for m in ("Guidelines distilled", "<example") if m in cur), default=-1
        )
        if cut > 0:
            aligned += 1
            assert prev.startswith(cur[:cut]), "a full call must follow its baseline call"
    assert aligned == len(items) * len(DIMS)


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    from judgealign.evaluation.store import JudgementStore
    from judgealign.judge.judgement import Judgement

    path = tmp_path / "judgements.jsonl"
    store = JudgementStore(path)
    store.add("baseline", -1, Judgement(item="a", dimension="d", score=1))
    whole = path.read_text()
    path.write_text(whole + '{"variant": "baseline", "fold": -1, "judgem')  # killed mid-write
    again = JudgementStore(path)
    assert path.read_text() == whole and again.get("baseline", -1, "a", "d") is not None
    again.add("baseline", -1, Judgement(item="b", dimension="d", score=2))
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["judgement"] for line in lines)


def test_a_failed_reflection_is_retried_on_the_next_run(tmp_path: Path) -> None:
    # Every reflection call got a 500: rerunning against a healthy server must distil the
    # guidelines, not keep "0 guidelines" frozen in the fold judges.
    def down(request: object) -> Exception:
        return ProviderError("refl: HTTP 500", transient=True)

    rubric, items, labels = model_use_data()
    common = {"folds": 2, "variants": ["baseline", "full"], "n_resamples": 200}
    first = run_evaluation(
        rubric,
        items,
        labels,
        reflection_llm=FakeLLM(handler=down),
        run_dir=tmp_path / "run",
        **common,
    )
    assert any("reflection failed" in n for n in first.notes)
    healthy = FakeLLM("constant")
    again = run_evaluation(
        rubric, items, labels, reflection_llm=healthy, run_dir=tmp_path / "run", **common
    )
    assert healthy.calls  # the failed batches were asked again
    assert not any("reflection failed" in n for n in again.notes)
    assert all(m.guidelines for m in again.memory)


def test_a_baseline_only_evaluation_needs_no_embedder() -> None:
    import judgealign as ja

    items, labels = ja.load_demo(dimensions=["model_use"])
    rubric = ja.load_rubric("ml-notebook").subset(["model_use"])
    judge = ja.Judge(rubric, model="fake:lenient", variant="baseline")
    report = ja.evaluate(judge, items, labels, variants=["baseline"], folds=2)
    assert report.config.embedder is None
    assert "embedder none" in report.summary()
    assert "none (baseline only)" in report.to_html()
