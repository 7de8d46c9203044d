"""Score calibration: the fitted map, its held-out check, persistence, and the judge using it."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.judge.judge import Judge
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import JudgeParams
from judgealign.memory.calibration import MIN_CALIBRATION_LABELS, fit_calibration
from judgealign.memory.episodic import EpisodeIndex
from judgealign.memory.records import Episode
from judgealign.memory.store import AlignmentMemory
from judgealign.providers.types import ChatRequest
from judgealign.rubric.model import Dimension, Rubric, Scale
from judgealign.testing import FakeLLM
from judgealign.testing import reflection as fake_reflection

SCALE = Scale(min=1, max=3, anchors={1: "bad", 2: "average", 3: "good"}, na_value=0)
RUBRIC = Rubric(
    id="t",
    name="test",
    dimensions=(Dimension(id="quality", name="Quality", description="Is it good?", scale=SCALE),),
)


def points(judge: list[float], expert: list[float]) -> list[tuple[str, float, float]]:
    return [(f"l{n:03d}", j, e) for n, (j, e) in enumerate(zip(judge, expert, strict=True))]


def own_groups(pts: list[tuple[str, float, float]]) -> dict[str, str]:
    return {p[0]: p[0] for p in pts}


def test_a_shifted_judge_is_shifted_back_and_clipped() -> None:
    pts = points([2.0, 3.0] * 8, [1.0, 2.0] * 8)  # one point too lenient, ranking right
    cal = fit_calibration(pts, own_groups(pts), SCALE)
    assert (cal.intercept, cal.slope, cal.applied) == (-1.0, 1.0, True)
    assert cal.mae == 0.0 and cal.mae_raw == 1.0 and cal.mae_heldout == 0.0
    assert cal.apply(3.0) == 2.0 and cal.apply(1.0) == 1.0  # 0 clipped up to the scale


def test_a_compressed_judge_is_stretched() -> None:
    # The judge hedges around 2 (its expected scores move a third as much as the experts').
    rng = np.random.default_rng(0)
    expert = [float(x) for x in rng.integers(1, 4, 30)]
    judge = [2.0 + (e - 2.0) / 3 + float(rng.normal(0, 0.05)) for e in expert]
    pts = points(judge, expert)
    cal = fit_calibration(pts, own_groups(pts), SCALE)
    assert cal.applied and cal.slope > 2.5  # steeper is as good: the scale clips the ends
    assert cal.mae is not None and cal.mae_raw is not None and cal.mae < cal.mae_raw / 3


def test_an_uninformative_map_is_not_applied() -> None:
    # Whatever a map learns from noise, it is applied only if it beat the raw scores on
    # groups it was not fitted on.
    for seed in range(10):
        rng = np.random.default_rng(seed)
        pts = points(
            [float(x) for x in rng.integers(1, 4, 20)], [float(x) for x in rng.integers(1, 4, 20)]
        )
        cal = fit_calibration(pts, own_groups(pts), SCALE, seed=seed)
        assert cal.mae_heldout is not None and cal.mae_raw is not None
        assert cal.applied == (cal.mae_heldout < cal.mae_raw)
        if not cal.applied:
            assert cal.apply(2.7) == 2.7


def test_too_few_or_na_points_give_an_unapplied_identity_that_keeps_them() -> None:
    pts = points([2.0] * (MIN_CALIBRATION_LABELS - 1) + [0.0], [1.0] * MIN_CALIBRATION_LABELS)
    cal = fit_calibration(pts, own_groups(pts), SCALE)
    assert not cal.applied and (cal.intercept, cal.slope) == (0.0, 1.0)
    assert cal.n_labels == MIN_CALIBRATION_LABELS - 1  # the N/A judge score is not a point
    assert cal.apply(2.0) == 2.0


def test_one_group_cannot_be_held_out() -> None:
    pts = points([2.0, 3.0] * 8, [1.0, 2.0] * 8)
    cal = fit_calibration(pts, {p[0]: "g" for p in pts}, SCALE)
    assert cal.mae_heldout is None and not cal.applied


def test_retrieval_can_leave_a_whole_group_out() -> None:
    eps = [
        Episode(
            id=f"i{n}::d::r",
            item=f"i{n}",
            group=f"g{n // 2}",
            dimension="d",
            rater="r",
            text="t",
            score=1.0,
        )
        for n in range(4)
    ]
    vecs = np.eye(4, dtype=np.float32) + 0.1
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    idx = EpisodeIndex(vecs, eps)
    hits = idx.search(vecs[0], k=4, similarity_floor=-1.0, max_per_group=2, exclude_groups={"g0"})
    assert sorted(r for r, _ in hits) == [2, 3]
    assert (
        len(
            idx.search(
                vecs[0], k=4, similarity_floor=-1.0, max_per_group=2, exclude_groups={"nope"}
            )
        )
        == 4
    )


# -- through the Judge (fake provider) ------------------------------------------------------
def lenient_by_one(request: ChatRequest) -> str:
    """Ranks items right but one point too high: 2 for broken code, 3 for decent code."""
    if (request.json_schema or {}).get("title", "") != "judgement":
        return fake_reflection.answer(request)
    score = 2 if "broken" in request.messages[-1].content else 3
    return json.dumps({"rationale": "fake: lenient by one point.", "score": score})


def data(n_groups: int) -> tuple[list[Item], list[Label]]:
    items, labels = [], []
    for g in range(n_groups):
        for m, (word, score) in enumerate((("broken", 1), ("decent", 2))):
            item = Item(id=f"it{g:02d}{m}", output=f"{word} code number {g}", group=f"g{g:02d}")
            items.append(item)
            labels.append(Label(item=item.id, dimension="quality", score=score, rater="x"))
    return items, labels


def calibrated_judge(llm: FakeLLM, **kw: object) -> Judge:
    params = JudgeParams(model="fake:x", embedder="fake", recalibrate=True, k=2, **kw)  # type: ignore[arg-type]
    return Judge(RUBRIC, params, llm=llm)


def test_judge_calibrates_on_leave_group_out_scores_and_applies_the_map() -> None:
    items, labels = data(12)
    llm = FakeLLM(handler=lenient_by_one)
    judge = calibrated_judge(llm)
    judge.fit(labels[:20], items[:20])
    assert judge.memory_ is not None
    cal = judge.memory_.calibration("quality", "full")
    assert cal is not None and cal.applied and cal.n_labels == 20
    assert (cal.intercept, cal.slope) == (-1.0, 1.0)
    out = judge.predict(items[20:])
    for j in out:
        truth = 1 if "broken" in next(it.output for it in items if it.id == j.item) else 2
        assert j.judge_score == truth + 1 and j.score == truth
    # The baseline is never calibrated; the episodic ablation has no map until fitted.
    base = judge.variant("baseline").predict(items[20:21])[0]
    assert base.judge_score is None and base.score == 2.0
    assert judge.variant("episodic").predict(items[20:21])[0].judge_score is None


def test_calibration_calls_leave_the_items_group_out() -> None:
    items, labels = data(10)
    judge = calibrated_judge(FakeLLM(handler=lenient_by_one))
    judge.fit(labels, items)
    assert judge.memory_ is not None
    fresh = calibrated_judge(FakeLLM(handler=lenient_by_one))
    fresh.memory_ = judge.memory_.with_calibrations({"quality": {"full": None}})
    seen: list[Judgement] = []
    asyncio.run(fresh.arecalibrate(items, on_judgement=seen.append))
    assert len(seen) == len(items)
    group_of = {it.id: it.group_id for it in items}
    episode_item = {e.id: e.item for e in judge.memory_.episodes("quality")}
    assert any(j.episodes for j in seen)
    for j in seen:
        assert all(group_of[episode_item[e]] != group_of[j.item] for e in j.episodes)


def test_more_labels_score_only_the_new_ones_and_forget_refits_without_calls() -> None:
    items, labels = data(12)
    llm = FakeLLM(handler=lenient_by_one)
    judge = calibrated_judge(llm, semantic=False)
    judge.fit(labels[:16], items[:16])
    first = len(llm.calls)
    judge.fit(labels, items)
    assert judge.memory_ is not None
    # Only the 8 new labels are scored for the calibration (no reflection: episodic only).
    assert len(llm.calls) - first == 8
    cal = judge.memory_.calibration("quality", "episodic")
    assert cal is not None and cal.n_labels == 24
    before = len(llm.calls)
    judge.forget([lb.id for lb in labels[:6]])
    assert len(llm.calls) == before
    cal = judge.memory_.calibration("quality", "episodic")
    assert cal is not None and cal.n_labels == 18


def test_calibration_persists_with_the_memory() -> None:
    items, labels = data(8)
    judge = calibrated_judge(FakeLLM(handler=lenient_by_one))
    judge.fit(labels, items)
    assert judge.memory_ is not None
    again = AlignmentMemory.from_json(judge.memory_.to_json())
    assert again.calibrations() == judge.memory_.calibrations()
    assert json.loads(judge.memory_.to_json())["schema_version"] == 3


def test_recalibrate_and_blend_are_exclusive() -> None:
    with pytest.raises(ValueError, match="one of blend and recalibrate"):
        JudgeParams(recalibrate=True, blend=True)
