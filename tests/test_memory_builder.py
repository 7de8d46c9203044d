"""MemoryBuilder: incremental fit, exact forgetting, persistence, end to end through Judge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import DataError
from judgealign.judge.judge import Judge
from judgealign.memory.builder import MemoryBuilder
from judgealign.memory.store import AlignmentMemory
from judgealign.providers.types import ChatRequest
from judgealign.rubric.model import Dimension, Rubric, Scale
from judgealign.testing import FakeEmbedder, FakeLLM

SCALE = Scale(min=1, max=3, anchors={1: "bad", 2: "average", 3: "good"}, na_value=0)
RUBRIC = Rubric(
    id="t",
    name="test",
    dimensions=(
        Dimension(id="imputation", name="Imputation", description="Imputes well.", scale=SCALE),
        Dimension(id="training", name="Training", description="Trains well.", scale=SCALE),
    ),
)
TOPICS = ["imputer leakage split", "cross validation tuning", "median pipeline", "no model"]


def labels_for(items: range, rater: str = "expert") -> list[Label]:
    out = []
    for i in items:
        for d in RUBRIC.dimension_ids:
            out.append(
                Label(
                    item=f"nb{i:02d}",
                    dimension=d,
                    score=1 + i % 3,
                    rater=rater,
                    rationale=f"Finding {i % 4} about {TOPICS[i % 4]}. Item {i}.",
                )
            )
    return out


async def fit(
    builder: MemoryBuilder,
    labels: list[Label],
    memory: AlignmentMemory | None = None,
) -> AlignmentMemory:
    items = sorted({lb.item for lb in labels})
    vecs = await FakeEmbedder(dim=64).embed([f"{TOPICS[int(i[2:]) % 4]} {i}" for i in items])
    return await builder.fit(
        RUBRIC,
        labels,
        texts={i: f"text of {i}" for i in items},
        embeddings=dict(zip(items, vecs, strict=True)),
        groups={i: f"group{int(i[2:]) // 2}" for i in items},
        memory=memory,
    )


def builder(llm: FakeLLM) -> MemoryBuilder:
    return MemoryBuilder(
        reflection=llm, embedder=FakeEmbedder(dim=64), merge_threshold=1.01, max_guidelines=50
    )


def prompts(calls: list[ChatRequest]) -> str:
    return "\n".join(c.messages[-1].content for c in calls)


async def test_refit_same_labels_costs_no_call() -> None:
    labels = labels_for(range(8))
    llm = FakeLLM()
    mem = await fit(builder(llm), labels)
    before = len(llm.calls)
    assert before >= 2  # one per dimension at least
    again = await fit(builder(llm), labels, memory=mem)
    assert len(llm.calls) == before
    assert again.to_json() == mem.to_json()
    assert again is not mem


async def test_only_new_labels_are_distilled() -> None:
    llm = FakeLLM()
    mem = await fit(builder(llm), labels_for(range(6)))
    start = len(llm.calls)
    more = labels_for(range(6, 9))
    mem2 = await fit(builder(llm), [*labels_for(range(6)), *more], memory=mem)
    new_prompts = prompts(llm.calls[start:])
    for lb in labels_for(range(6)):
        assert lb.rationale not in new_prompts
    for lb in more:
        assert lb.rationale in new_prompts
    assert mem2.label_ids() == {lb.id for lb in labels_for(range(9))}
    assert mem.label_ids() == {lb.id for lb in labels_for(range(6))}  # input untouched


async def test_changed_label_is_retracted_and_re_added() -> None:
    labels = labels_for(range(4))
    llm = FakeLLM()
    mem = await fit(builder(llm), labels)
    old = labels[0]
    new = Label(
        item=old.item,
        dimension=old.dimension,
        rater=old.rater,
        score=3,
        rationale="Completely different reading of this.",
    )
    mem2 = await fit(builder(llm), [new, *labels[1:]], memory=mem)
    (ep,) = [e for e in mem2.episodes(old.dimension) if e.id == old.id]
    assert ep.score == 3 and ep.rationale == new.rationale
    for g in mem2.guidelines(old.dimension):
        assert "finding 0 about" not in g.text.lower() or old.id not in g.sources


async def test_forget_is_exact() -> None:
    labels = [*labels_for(range(8)), *labels_for(range(12, 13))]
    llm = FakeLLM()
    mem = await fit(builder(llm), labels)
    # nb00 and nb12 share score and first clause: one guideline with two sources.
    gone = {"nb00::imputation::expert"}
    shared = [g for g in mem.guidelines("imputation") if set(g.sources) & gone]
    assert shared and any(g.support > 1 for g in shared)
    start = len(llm.calls)
    after = await builder(llm).forget(mem, gone, RUBRIC)
    assert gone.isdisjoint(after.label_ids())
    for g in after.guidelines("imputation"):
        assert gone.isdisjoint(g.sources)
    redo = llm.calls[start:]
    assert redo, "guidelines drawing on the removed label must be re-distilled"
    removed_text = next(lb.rationale for lb in labels if lb.id in gone)
    assert removed_text not in prompts(redo)
    # The remaining source of the shared guideline was re-distilled, so it still backs one.
    remaining = set(shared[0].sources) - gone
    assert any(remaining <= set(g.sources) for g in after.guidelines("imputation"))
    # Untouched dimension unchanged.
    assert after.guidelines("training") == mem.guidelines("training")


async def test_forget_drops_guidelines_without_remaining_sources() -> None:
    labels = [
        Label(item="a", dimension="imputation", score=1, rationale="Leaky imputer."),
        Label(item="b", dimension="imputation", score=3, rationale="Clean pipeline."),
    ]
    llm = FakeLLM()
    mem = await fit(
        builder(llm), [lb.model_copy(update={"item": f"nb0{n}"}) for n, lb in enumerate(labels)]
    )
    gone = {"nb00::imputation::expert"}
    after = await builder(llm).forget(mem, gone, RUBRIC)
    assert [g.text for g in after.guidelines("imputation")] == [
        "Experts give 3 when: clean pipeline."
    ]
    assert [e.id for e in after.episodes("imputation")] == ["nb01::imputation::expert"]


async def test_forget_unknown_ids_lists_them() -> None:
    mem = await fit(builder(FakeLLM()), labels_for(range(2)))
    with pytest.raises(DataError, match="nope::x::y"):
        await builder(FakeLLM()).forget(mem, {"nope::x::y"}, RUBRIC)


async def test_save_load_round_trip_keeps_context(tmp_path: Path) -> None:
    mem = await fit(builder(FakeLLM()), labels_for(range(10)))
    path = tmp_path / "memory.json"
    path.write_text(mem.to_json(), encoding="utf-8")
    loaded = AlignmentMemory.from_json(path.read_text(encoding="utf-8"), source=str(path))
    q = (await FakeEmbedder(dim=64).embed(["median pipeline query"]))[0]
    kwargs = dict(
        k=3,
        similarity_floor=-1.0,
        max_per_group=1,
        max_guidelines=2,
        guideline_budget_tokens=60,
        exclude_items={"nb01"},
    )
    for d in RUBRIC.dimension_ids:
        a = mem.context(d, q, **kwargs)  # type: ignore[arg-type]
        b = loaded.context(d, q, **kwargs)  # type: ignore[arg-type]
        assert a.guidelines == b.guidelines
        assert [(e.id, round(s, 6)) for e, s in a.episodes] == [
            (e.id, round(s, 6)) for e, s in b.episodes
        ]
        assert a.episodes
    assert np.array_equal(
        mem.dimension("imputation").episode_vectors, loaded.dimension("imputation").episode_vectors
    )


async def test_corrupt_and_newer_files_raise_data_error() -> None:
    mem = await fit(builder(FakeLLM()), labels_for(range(2)))
    data = json.loads(mem.to_json())
    with pytest.raises(DataError, match="corrupt memory"):
        AlignmentMemory.from_json("{not json", source="m.json")
    newer = dict(data, schema_version=99)
    with pytest.raises(DataError, match="newer"):
        AlignmentMemory.from_json(json.dumps(newer), source="m.json")
    broken = json.loads(mem.to_json())
    broken["dimensions"]["imputation"]["episode_vectors"]["b64"] = "AAAA"
    with pytest.raises(DataError, match=r"m\.json: corrupt memory at"):
        AlignmentMemory.from_json(json.dumps(broken), source="m.json")
    with pytest.raises(DataError, match="embedder"):
        AlignmentMemory.from_json(mem.to_json(), source="m.json", embedder="other")
    with pytest.raises(DataError, match="embedder"):
        await MemoryBuilder(reflection=FakeLLM(), embedder=FakeEmbedder(name="other")).fit(
            RUBRIC,
            labels_for(range(3)),
            texts={},
            embeddings={},
            groups={},
            memory=mem,
        )


async def test_missing_item_text_is_a_data_error() -> None:
    with pytest.raises(DataError, match="nb00"):
        await builder(FakeLLM()).fit(
            RUBRIC,
            labels_for(range(1)),
            texts={},
            embeddings={},
            groups={},
            memory=None,
        )


def test_judge_end_to_end_with_mimic() -> None:
    topics = [
        "imputer fitted before the split leaks",
        "median imputer inside the pipeline",
        "no missing values were handled",
    ]
    items = [Item(id=f"nb{i}", output=f"notebook {i}: {topics[i % 3]} " * 5) for i in range(9)]
    labels = [
        Label(
            item=it.id,
            dimension="imputation",
            score=1 + i % 3,
            rationale=f"Because {topics[i % 3]}.",
        )
        for i, it in enumerate(items)
    ]
    llm = FakeLLM("mimic")
    judge = Judge(
        RUBRIC, model=llm, embedder=FakeEmbedder(), k=2, similarity_floor=0.0, context_ratio=None
    )
    judge.fit(labels, items)
    assert judge.memory_ is not None and judge.memory_.guidelines("imputation")
    queries = [Item(id=f"q{i}", output=f"new notebook: {topics[i]} " * 5) for i in range(3)]
    results = judge.predict(queries, dimensions=["imputation"])
    sources = judge.memory_.guideline_sources()
    for j, want in zip(results, (1, 2, 3), strict=True):
        assert j.episodes and j.guidelines
        assert all(g in sources for g in j.guidelines)
        assert j.score == want  # mimic copies the nearest expert score
    # refitting the same labels costs no reflection call
    n = len(llm.calls)
    judge.fit(labels, items)
    assert len(llm.calls) == n
    # Scoring with another embedder than the memory was built with is refused, not silently
    # retrieving by meaningless cosines.
    other = Judge(RUBRIC, model=llm, embedder=FakeEmbedder(name="fake-other"), k=2)
    other.memory_ = judge.memory_
    with pytest.raises(DataError, match="built with embedder 'fake'"):
        other.predict(queries, dimensions=["imputation"])
