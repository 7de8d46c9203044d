"""Relative memory-context budget: aligned prompts stay within a ratio of the zero-shot one."""

from __future__ import annotations

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.judge.context_budget import MIN_EPISODE_TOKENS, fit_context
from judgealign.judge.judge import Judge
from judgealign.memory.records import Episode, Guideline
from judgealign.render.tokens import estimate_tokens
from judgealign.rubric import load_rubric
from judgealign.testing import FakeEmbedder, FakeLLM


def episode(n: int, words: int = 300, why_words: int = 200) -> tuple[Episode, float]:
    ep = Episode(
        id=f"i{n}::d::r",
        item=f"i{n}",
        group=f"g{n}",
        dimension="d",
        rater="r",
        text=" ".join(f"item{n}word" for _ in range(words)),
        score=2,
        rationale=" ".join("because" for _ in range(why_words)),
    )
    return ep, 0.9 - n / 10


def guideline(n: int) -> Guideline:
    return Guideline.create("d", f"Rule {n}: penalize a subtle flaw of kind {n}.", (f"l{n}",))


def cost(guidelines: tuple[Guideline, ...], episodes: tuple[tuple[Episode, float], ...]) -> int:
    return sum(estimate_tokens(g.text) + 3 for g in guidelines) + sum(
        estimate_tokens(e.text) + estimate_tokens(e.rationale) + 30 for e, _ in episodes
    )


def test_everything_kept_when_it_fits() -> None:
    gs = [guideline(1), guideline(2)]
    eps = [episode(1, 10, 5), episode(2, 10, 5)]
    got_g, got_e = fit_context(gs, eps, 2000)
    assert got_g == tuple(gs) and got_e == tuple(eps)


def test_long_examples_trimmed_to_budget_keeping_verdicts() -> None:
    gs = [guideline(n) for n in range(3)]
    eps = [episode(n) for n in range(3)]
    got_g, got_e = fit_context(gs, eps, 600)
    assert got_g == tuple(gs)
    assert [e.id for e, _ in got_e] == [e.id for e, _ in eps]
    assert cost(got_g, got_e) <= 600
    for (ep, sim), (orig, orig_sim) in zip(got_e, eps, strict=True):
        assert sim == orig_sim and ep.score == orig.score
        assert "characters trimmed" in ep.text
        # The justification keeps a real share; it is the experts' reasoning.
        assert estimate_tokens(ep.rationale) >= 40


def test_least_similar_examples_dropped_before_unreadable() -> None:
    eps = [episode(n) for n in range(4)]
    _, got_e = fit_context([], eps, 3 * MIN_EPISODE_TOKENS + 40)
    assert [e.id for e, _ in got_e] == [e.id for e, _ in eps[:2]]


def test_guidelines_leave_room_for_examples() -> None:
    gs = [guideline(n) for n in range(40)]
    got_g, got_e = fit_context(gs, [episode(1)], 400)
    assert got_e and sum(estimate_tokens(g.text) + 3 for g in got_g) <= 200
    assert got_g == tuple(gs[: len(got_g)])  # relevance order kept


def test_judge_prompt_within_ratio_on_short_items() -> None:
    rubric = load_rubric("ml-notebook").subset(["model_use"])
    items = [Item(id=f"nb{i}", output=f"model.predict(X{i})  # short") for i in range(8)]
    labels = [
        Label(
            item=f"nb{i}",
            dimension="model_use",
            score=1 + i % 3,
            rationale="The model is applied to data it was trained on; " * 20,
        )
        for i in range(6)
    ]
    llm = FakeLLM("constant")
    judge = Judge(
        rubric, model=llm, embedder=FakeEmbedder(), k=3, similarity_floor=-1.0, context_ratio=None
    ).fit(labels, items)
    test = items[6:]
    base = judge.ablation("baseline").predict(test)
    wide = judge.predict(test)
    tight = judge.set_params(context_ratio=0.5).predict(test)  # the default cap
    for b, w, t in zip(base, wide, tight, strict=True):
        assert w.episodes and t.episodes  # examples are still shown, trimmed
        assert w.usage.prompt_tokens > 1.5 * b.usage.prompt_tokens
        # estimate_tokens is pessimistic, so the provider's count stays within the ratio.
        assert t.usage.prompt_tokens <= 1.5 * b.usage.prompt_tokens


def _na_judge() -> tuple[Judge, list[Item]]:
    rubric = load_rubric("ml-notebook").subset(["data_imputation"])
    items = [
        Item(id="na1", output="print('no missing values here at all')"),
        Item(id="na2", output="print('no missing values here either')"),
        Item(id="imp1", output="imputer = SimpleImputer().fit(X_train); X = imputer.transform(X)"),
        Item(id="imp2", output="df = df.fillna(df.median()); imputer fit on all rows"),
        Item(id="q_imp", output="imputer = SimpleImputer().fit(X_train) median strategy"),
        Item(id="q_na", output="print('no missing values here')"),
    ]
    scores = {"na1": 0, "na2": 0, "imp1": 3, "imp2": 1}
    labels = [Label(item=i, dimension="data_imputation", score=s) for i, s in scores.items()]
    judge = Judge(rubric, model=FakeLLM("constant"), embedder=FakeEmbedder(), k=3)
    judge.set_params(similarity_floor=-1.0)
    return judge.fit(labels, items), items


def test_na_examples_shown_only_when_the_nearest_is_na() -> None:
    judge, items = _na_judge()
    by_id = {j.item: j for j in judge.predict(items[4:])}
    applicable = by_id["q_imp"].episodes
    assert applicable and not any(e.startswith("na") for e in applicable)
    assert any(e.startswith("na") for e in by_id["q_na"].episodes)
    assert len(applicable) == 2  # over-fetched: k applicable examples remain after the filter
