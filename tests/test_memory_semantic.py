"""Semantic memory: batching, provenance, merging, contradictions, cap, failures."""

from __future__ import annotations

import json

import numpy as np

from judgealign.data.label import Label
from judgealign.memory.builder import MemoryBuilder
from judgealign.memory.reflection_prompts import LABEL_TAG, LabelView
from judgealign.memory.semantic import Distiller, Draft, cap_drafts, merge_drafts
from judgealign.memory.store import AlignmentMemory
from judgealign.providers.types import ChatRequest
from judgealign.rubric.model import Dimension, Rubric, Scale
from judgealign.testing import FakeEmbedder, FakeLLM

DIM = "imputation"
SCALE = Scale(min=1, max=3, anchors={1: "bad", 2: "average", 3: "good"}, na_value=0)
RUBRIC = Rubric(
    id="t",
    name="test",
    dimensions=(
        Dimension(id=DIM, name="Data imputation", description="Imputes well.", scale=SCALE),
    ),
)
REASONS = [
    "The imputer is fit before the split. Leakage.",
    "Missing values are filled with train statistics only.",
    "No missing values are handled at all.",
    "Median imputation inside a pipeline with cross-validation.",
]


def make_labels(n: int, rater: str = "expert") -> list[Label]:
    return [
        Label(
            item=f"item{i:03d}",
            dimension=DIM,
            score=1 + i % 3,
            rater=rater,
            rationale=REASONS[i % len(REASONS)] + f" Detail {i}.",
        )
        for i in range(n)
    ]


async def fit(
    builder: MemoryBuilder, labels: list[Label], memory: AlignmentMemory | None = None
) -> AlignmentMemory:
    emb = FakeEmbedder(dim=64)
    items = sorted({lb.item for lb in labels})
    vecs = await emb.embed([f"notebook {i} imputation code" for i in items])
    return await builder.fit(
        RUBRIC,
        labels,
        texts={i: f"notebook {i}" for i in items},
        embeddings=dict(zip(items, vecs, strict=True)),
        groups={i: i for i in items},
        memory=memory,
    )


def reflection_calls(llm: FakeLLM, title: str = "guidelines") -> list[ChatRequest]:
    return [c for c in llm.calls if (c.json_schema or {}).get("title") == title]


def test_plan_puts_every_label_in_exactly_one_batch() -> None:
    views = [LabelView(id=f"i{n}::{DIM}::r", score=1, rationale="x " * 40) for n in range(30)]
    distiller = Distiller(FakeLLM(), batch_budget_tokens=1200, max_guidelines=12, seed=3)
    dim = RUBRIC.dimension(DIM)
    plan = distiller.plan(dim, views)
    ids = [v.id for batch in plan for v, _ in batch]
    assert sorted(ids) == sorted(v.id for v in views)
    assert len(plan) > 1
    room = 1200 - distiller.fixed_tokens(dim)
    from judgealign.render.tokens import estimate_tokens

    for batch in plan:
        assert sum(estimate_tokens(b) + 1 for _, b in batch) <= room


async def test_distillation_batches_by_token_budget() -> None:
    # Uniform labels: every block costs the same, so 3 per call means ceil(12 / 3) calls.
    labels = [
        Label(
            item=f"item{i:03d}",
            dimension=DIM,
            score=1 + i % 3,
            rationale=f"Reason {i:02d}: the imputation step is {'x' * 60}.",
        )
        for i in range(12)
    ]
    from judgealign.memory.reflection_prompts import render_label
    from judgealign.render.tokens import estimate_tokens

    probe = Distiller(FakeLLM(), batch_budget_tokens=6000, max_guidelines=50, seed=0)
    dim = RUBRIC.dimension(DIM)
    block = max(
        estimate_tokens(render_label(n, LabelView(lb.id, lb.score, lb.rationale))) + 1
        for n in (1, 2, 3)
        for lb in labels
    )
    budget = probe.fixed_tokens(dim) + 3 * block + 1
    llm = FakeLLM()
    builder = MemoryBuilder(
        reflection=llm, embedder=FakeEmbedder(dim=64), batch_budget_tokens=budget, max_guidelines=50
    )
    await fit(builder, labels)
    calls = reflection_calls(llm)
    assert len(calls) == 4
    shown = [m.group(3) for c in calls for m in LABEL_TAG.finditer(c.messages[-1].content)]
    assert sorted(shown) == sorted(lb.rationale for lb in labels)  # each label exactly once


async def test_one_call_when_everything_fits() -> None:
    llm = FakeLLM()
    await fit(MemoryBuilder(reflection=llm, embedder=FakeEmbedder(dim=64)), make_labels(8))
    assert len(reflection_calls(llm)) == 1


async def test_guidelines_keep_provenance_within_their_batch() -> None:
    labels = make_labels(12)
    llm = FakeLLM()
    memory = await fit(
        MemoryBuilder(
            reflection=llm,
            embedder=FakeEmbedder(dim=64),
            batch_budget_tokens=900,
            max_guidelines=50,
        ),
        labels,
    )
    batches = []
    for call in reflection_calls(llm):
        shown = {m.group(3).strip() for m in LABEL_TAG.finditer(call.messages[-1].content)}
        batches.append({lb.id for lb in labels if lb.rationale in shown})
    guidelines = memory.guidelines(DIM)
    assert guidelines
    all_ids = {lb.id for lb in labels}
    for g in guidelines:
        assert set(g.sources) <= all_ids
        assert "item0" not in g.text  # no item ids in guideline text
    # Without merging across batches every guideline comes from one batch.
    memory2 = await fit(
        MemoryBuilder(
            reflection=FakeLLM(),
            embedder=FakeEmbedder(dim=64),
            batch_budget_tokens=900,
            max_guidelines=50,
            merge_threshold=1.01,
        ),
        labels,
    )
    for g in memory2.guidelines(DIM):
        assert any(set(g.sources) <= b for b in batches)


async def test_unknown_source_numbers_and_sourceless_guidelines_are_dropped() -> None:
    answer = json.dumps(
        {
            "guidelines": [
                {
                    "text": "Leakage through early imputation -> score 1.",
                    "score": 1,
                    "sources": [1, 99],
                },
                {"text": "Invented rule.", "score": 2, "sources": [42]},
                {"text": "Names item001 explicitly -> 1.", "score": 1, "sources": [1]},
            ]
        }
    )
    llm = FakeLLM(script=[answer])
    memory = await fit(MemoryBuilder(reflection=llm, embedder=FakeEmbedder(dim=64)), make_labels(2))
    texts = [g.text for g in memory.guidelines(DIM)]
    assert texts == ["Leakage through early imputation -> score 1."]
    (g,) = memory.guidelines(DIM)
    assert len(g.sources) == 1 and g.sources[0].startswith("item")


async def test_unparseable_reflection_retries_once_then_records_failure() -> None:
    llm = FakeLLM(script=["not json", "still not json"])
    memory = await fit(MemoryBuilder(reflection=llm, embedder=FakeEmbedder(dim=64)), make_labels(3))
    assert len(llm.calls) == 2
    assert "could not be read" in llm.calls[1].messages[-1].content
    assert memory.guidelines(DIM) == ()
    assert len(memory.episodes(DIM)) == 3
    (failure,) = memory.failures()
    assert len(failure.labels) == 3 and "unparseable" in failure.error
    assert memory.summary()[DIM]["failed_batches"] == 1


def _draft(text: str, score: float | None, sources: tuple[str, ...], vec: list[float]) -> Draft:
    v = np.asarray(vec, dtype=np.float32)
    return Draft(text, score, sources, vector=v / np.linalg.norm(v))


def test_near_duplicates_merge_with_union_of_sources() -> None:
    drafts = [
        _draft("Imputer fit before split -> 1.", 1, ("a", "b"), [1, 0, 0]),
        _draft("Imputer fitted before the split -> 1.", 1, ("c",), [0.99, 0.1, 0]),
        _draft("Pipelines with CV -> 3.", 3, ("d",), [0, 1, 0]),
    ]
    merged = merge_drafts(drafts, 0.9)
    assert len(merged) == 2
    first = merged[0]
    assert first.text == "Imputer fit before split -> 1."  # better-supported text kept
    assert first.sources == ("a", "b", "c")


def test_different_scores_never_merge() -> None:
    drafts = [
        _draft("Imputer before split -> 1.", 1, ("a",), [1, 0, 0]),
        _draft("Imputer before split -> 2.", 2, ("b",), [1, 0.01, 0]),
    ]
    assert len(merge_drafts(drafts, 0.9)) == 2


def test_cap_keeps_best_supported_deterministically() -> None:
    drafts = [
        _draft(f"rule {n}", 1, tuple(f"s{m}" for m in range(n % 5 + 1)), [1, n, 0])
        for n in range(10)
    ]
    capped = cap_drafts(drafts, 3)
    assert [d.support for d in capped] == [5, 5, 4]
    assert capped == cap_drafts(list(reversed(drafts)), 3)


async def test_memory_is_capped_per_dimension_by_support() -> None:
    labels = [
        Label(
            item=f"it{i}",
            dimension=DIM,
            score=1 + i % 3,
            rationale=f"Reason number {i % 7} applies here.",
        )
        for i in range(28)
    ]
    memory = await fit(
        MemoryBuilder(
            reflection=FakeLLM(),
            embedder=FakeEmbedder(dim=64),
            max_guidelines=3,
            merge_threshold=1.01,
        ),
        labels,
    )
    guidelines = memory.guidelines(DIM)
    assert len(guidelines) == 3
    supports = [g.support for g in guidelines]
    assert supports == sorted(supports, reverse=True)


async def test_contradictions_resolved_in_one_call() -> None:
    # Same wording, different scores: the fake resolver keeps the better-supported one.
    labels = [
        Label(item="a1", dimension=DIM, score=1, rationale="Mean imputation on all rows."),
        Label(item="a2", dimension=DIM, score=1, rationale="Mean imputation on all rows."),
        Label(item="a3", dimension=DIM, score=2, rationale="Mean imputation on all rows."),
    ]
    llm = FakeLLM()
    memory = await fit(MemoryBuilder(reflection=llm, embedder=FakeEmbedder(dim=64)), labels)
    assert len(reflection_calls(llm, "resolution")) == 1
    (g,) = memory.guidelines(DIM)
    assert g.text.startswith("Experts give 1")
    # The dropped reading's label stays an episode but backs no guideline.
    assert set(g.sources) == {"a1::imputation::expert", "a2::imputation::expert"}
    assert len(memory.episodes(DIM)) == 3


def test_clean_text_drops_copied_format_template_and_item_names() -> None:
    from judgealign.memory.guideline_text import clean_text
    from judgealign.memory.reflection_prompts import EXAMPLE_GUIDELINE

    assert clean_text(EXAMPLE_GUIDELINE) is None
    assert clean_text("<observable pattern in the item> -> score 2.") is None
    assert clean_text("Uses nb7.ipynb's trick -> score 1.", forbidden=["nb7.ipynb"]) is None
    kept = clean_text('  "Metrics computed on the training set only -> score 1."  ')
    assert kept == "Metrics computed on the training set only -> score 1."


async def test_guideline_copying_a_justification_is_dropped() -> None:
    labels = [
        Label(
            item="item000",
            dimension=DIM,
            score=1,
            rationale="The imputer is fit on the whole data frame before the train test split.",
        )
    ]
    answer = json.dumps(
        {
            "guidelines": [
                {
                    "text": "The imputer is fit on the whole data frame before the split: 1.",
                    "score": 1,
                    "sources": [1],
                },
                {
                    "text": "Imputation fit before splitting leaks: score 1.",
                    "score": 1,
                    "sources": [1],
                },
            ]
        }
    )
    llm = FakeLLM(script=[answer])
    memory = await fit(MemoryBuilder(reflection=llm, embedder=FakeEmbedder(dim=64)), labels)
    assert [g.text for g in memory.guidelines(DIM)] == [
        "Imputation fit before splitting leaks: score 1."
    ]
