"""Base rates (the experts' score spread and the unaligned judge's miss) and penalty scales."""

from __future__ import annotations

import json

import pytest

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.judge.judge import Judge
from judgealign.judge.params import JudgeParams
from judgealign.judge.prompt import PENALTY_SYSTEM_PROMPT, SYSTEM_PROMPT, build_request
from judgealign.memory.base_rates import MIN_EPISODES, describe_base_rates
from judgealign.memory.records import Episode
from judgealign.providers.types import ChatRequest
from judgealign.rubric import load_rubric
from judgealign.rubric.model import Dimension, Rubric, Scale
from judgealign.testing import FakeLLM
from judgealign.testing import reflection as fake_reflection

THREE = Scale(min=1, max=3, anchors={1: "bad", 2: "average", 3: "good"}, na_value=0)
PENALTY = Scale(min=0, max=25, anchors={0: "no error", 25: "gibberish"}, lower_is_better=True)


def episodes(scores: list[float], judge: list[float | None] | None = None) -> list[Episode]:
    judge = judge or [None] * len(scores)
    base = {"dimension": "d", "rater": "x", "text": "t"}
    return [
        Episode(id=f"e{n}", item=f"i{n}", group=f"g{n}", score=s, judge_score=j, **base)
        for n, (s, j) in enumerate(zip(scores, judge, strict=True))
    ]


def test_levels_are_listed_with_their_share_and_na_apart() -> None:
    text = describe_base_rates(episodes([1, 2, 2, 3, 3, 3, 0, 0]), THREE)
    assert text.startswith("How the experts scored this dimension on 8 labelled items: ")
    assert "1 in 12%, 2 in 25%, 3 in 38%, not applicable (0) in 25% (median 2.5)." in text
    assert "unaligned judge" not in text  # no judge scores: no bias sentence


def test_mean_of_raters_scores_count_at_their_nearest_level() -> None:
    text = describe_base_rates(episodes([1.33, 1.67, 2.33, 2.67, 3.0]), THREE)
    assert "1 in 20%, 2 in 40%, 3 in 40%" in text


def test_a_wide_scale_with_few_values_lists_them_and_a_spread_one_gives_quartiles() -> None:
    mqm = describe_base_rates(episodes([0, 0, 0, 0, 0, 0, 1, 5, 5, 10]), PENALTY)
    assert "0 in 60%, 1 in 10%, 5 in 20%, 10 in 10% (median 0)" in mqm
    wide = Scale(min=0, max=100, anchors={0: "none", 100: "all"})
    spread = describe_base_rates(episodes([float(v) for v in range(10, 100, 9)]), wide)
    assert "a quarter at or below 30.2, a quarter at or above 70.8 (median 50.5)" in spread


def test_the_judges_miss_is_told_only_with_enough_judge_scores() -> None:
    eps = episodes([0, 0, 0, 5, 0, 1], judge=[10, 5, 0, 10, 5, 0])
    text = describe_base_rates(eps, PENALTY)
    assert "above the experts on 67% of them and below on 17% (mean difference +4.0)" in text
    few = episodes([0, 0, 0, 5, 0, 1], judge=[10, 5, None, None, None, None])
    assert "unaligned judge" not in describe_base_rates(few, PENALTY)


def test_too_few_labels_say_nothing() -> None:
    assert describe_base_rates(episodes([1.0] * (MIN_EPISODES - 1)), THREE) == ""


def test_penalty_scales_get_their_own_instructions() -> None:
    wmt = load_rubric("wmt-mqm")
    assert all(d.scale.lower_is_better and d.scale.best == 0 for d in wmt.dimensions)
    req = build_request(model="m", item_id="x", item_text="t", dimension=wmt.dimensions[0])
    system, user = req.messages[0].content, req.messages[1].content
    assert system == PENALTY_SYSTEM_PROMPT and "reserve the top score" not in system
    assert "Scale (a penalty: lower is better, 0 = no error):" in user
    notebook = load_rubric("ml-notebook").dimensions[0]
    assert not notebook.scale.lower_is_better and notebook.scale.best == notebook.scale.max
    plain = build_request(model="m", item_id="x", item_text="t", dimension=notebook)
    assert plain.messages[0].content == SYSTEM_PROMPT


# -- through the Judge (fake provider) ------------------------------------------------------
RUBRIC = Rubric(
    id="t",
    name="test",
    dimensions=(Dimension(id="quality", name="Quality", description="Is it good?", scale=THREE),),
)


def harsh(request: ChatRequest) -> str:
    if (request.json_schema or {}).get("title", "") != "judgement":
        return fake_reflection.answer(request)
    return json.dumps({"rationale": "fake: harsh.", "score": 1})


def fitted(**kw: object) -> tuple[Judge, FakeLLM, list[Item]]:
    items = [Item(id=f"it{n}", output=f"code {n}", group=f"g{n}") for n in range(10)]
    labels = [
        Label(item=it.id, dimension="quality", score=3 if n < 8 else 2, rater="x")
        for n, it in enumerate(items)
    ]
    llm = FakeLLM(handler=harsh)
    params = JudgeParams(model="fake:x", embedder="fake", k=2, calibrate=True, **kw)  # type: ignore[arg-type]
    judge = Judge(RUBRIC, params, llm=llm)
    judge.fit(labels[:8] + labels[8:], items)
    return judge, llm, items


def last_prompt(llm: FakeLLM) -> str:
    return llm.calls[-1].messages[-1].content


@pytest.mark.parametrize("variant", ["semantic", "full"])
def test_semantic_variants_show_the_base_rates_before_the_guidelines(variant: str) -> None:
    judge, llm, _ = fitted(base_rates=True)
    judge.variant(variant).predict([Item(id="new", output="code new", group="gnew")])  # type: ignore[arg-type]
    prompt = last_prompt(llm)
    assert "this dimension on 10 labelled items: 2 in 20%, 3 in 80%" in prompt
    assert "below on 100% (mean difference -1.8); correct for that." in prompt
    if "Guidelines distilled" in prompt:
        assert prompt.index("How the experts") < prompt.index("Guidelines distilled")


def test_own_item_is_left_out_and_other_variants_or_default_params_show_nothing() -> None:
    judge, llm, items = fitted(base_rates=True)
    judge.predict(items[:1])  # a labelled item: its own label is not counted
    assert "on 9 labelled items" in last_prompt(llm)
    judge.variant("episodic").predict(items[:1])
    assert "How the experts" not in last_prompt(llm)
    plain, plain_llm, _ = fitted()
    plain.predict(items[:1])
    assert "How the experts" not in last_prompt(plain_llm)
