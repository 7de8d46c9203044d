"""Episodic retrieval and guideline selection."""

from __future__ import annotations

import numpy as np

from judgealign.memory.episodic import EpisodeIndex
from judgealign.memory.records import Episode, Guideline
from judgealign.memory.selection import select_guidelines
from judgealign.memory.store import AlignmentMemory, DimensionMemory


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def episode(
    item: str,
    *,
    group: str | None = None,
    rater: str = "r",
    score: float = 2,
) -> Episode:
    return Episode(
        id=f"{item}::d::{rater}",
        item=item,
        group=group or item,
        dimension="d",
        rater=rater,
        text=f"text of {item}",
        score=score,
        rationale="why",
    )


def index(pairs: list[tuple[Episode, np.ndarray]]) -> tuple[EpisodeIndex, list[Episode]]:
    pairs = sorted(pairs, key=lambda p: p[0].id)
    eps = [e for e, _ in pairs]
    return EpisodeIndex(np.stack([v for _, v in pairs]), eps), eps


def test_top_k_best_first_with_similarities() -> None:
    q = unit(1, 0, 0)
    idx, eps = index(
        [
            (episode("a"), unit(1, 0.1, 0)),
            (episode("b"), unit(1, 1, 0)),
            (episode("c"), unit(0, 1, 0)),
        ]
    )
    hits = idx.search(q, k=2, similarity_floor=-1.0)
    assert [eps[r].item for r, _ in hits] == ["a", "b"]
    assert hits[0][1] > hits[1][1]
    assert abs(hits[0][1] - float(unit(1, 0.1, 0) @ q)) < 1e-6


def test_similarity_floor_excludes_far_episodes() -> None:
    idx, eps = index([(episode("a"), unit(1, 0, 0)), (episode("b"), unit(0, 1, 0))])
    hits = idx.search(unit(1, 0, 0), k=5, similarity_floor=0.5)
    assert [eps[r].item for r, _ in hits] == ["a"]


def test_diversity_limits_episodes_per_group_and_item() -> None:
    pairs = [(episode(f"x{n}", group="g1"), unit(1, 0.01 * n, 0)) for n in range(5)]
    pairs += [
        (episode("y", group="g2"), unit(1, 0.5, 0)),
        (episode("z", rater="r1"), unit(1, 0.6, 0)),
        (episode("z", rater="r2"), unit(1, 0.6, 0)),
    ]
    idx, eps = index(pairs)
    hits = idx.search(unit(1, 0, 0), k=5, similarity_floor=-1.0, max_per_group=1)
    groups = [eps[r].group for r, _ in hits]
    assert groups.count("g1") == 1
    assert [eps[r].item for r, _ in hits].count("z") == 1  # two raters, one slot
    hits2 = idx.search(unit(1, 0, 0), k=5, similarity_floor=-1.0, max_per_group=2)
    assert [eps[r].group for r, _ in hits2].count("g1") == 2


def test_exclude_items() -> None:
    idx, eps = index([(episode("a"), unit(1, 0, 0)), (episode("b"), unit(1, 0.2, 0))])
    hits = idx.search(unit(1, 0, 0), k=2, similarity_floor=-1.0, exclude_items={"a"})
    assert [eps[r].item for r, _ in hits] == ["b"]


def test_ties_are_broken_by_episode_id_deterministically() -> None:
    v = unit(1, 1, 0)
    pairs = [(episode(name), v) for name in ("m", "c", "x", "a", "q")]
    idx, eps = index(pairs)
    first = [eps[r].item for r, _ in idx.search(v, k=3, similarity_floor=0.0)]
    assert first == ["a", "c", "m"]
    assert first == [eps[r].item for r, _ in idx.search(v, k=3, similarity_floor=0.0)]


def test_search_scales_past_oversampling_when_groups_saturate() -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(400, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    eps = [episode(f"i{n:04d}", group=f"g{n % 4}") for n in range(400)]
    idx = EpisodeIndex(vecs, eps)
    hits = idx.search(vecs[0], k=4, similarity_floor=-1.0, max_per_group=1)
    assert sorted(eps[r].group for r, _ in hits) == ["g0", "g1", "g2", "g3"]


def test_guidelines_all_when_they_fit_else_most_relevant() -> None:
    gs = [
        Guideline.create("d", f"rule about topic {n}", tuple(f"s{m}" for m in range(n + 1)))
        for n in range(3)
    ]
    vecs = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)])
    assert select_guidelines(gs, vecs, unit(1, 0, 0), max_guidelines=5, budget_tokens=1000) == [
        0,
        1,
        2,
    ]
    chosen = select_guidelines(gs, vecs, unit(1, 0, 0), max_guidelines=1, budget_tokens=1000)
    assert chosen == [0] or chosen == [2]  # relevance vs support trade-off
    assert select_guidelines(gs, vecs, unit(0, 0, 1), max_guidelines=1, budget_tokens=1000) == [2]
    assert select_guidelines(gs, vecs, unit(1, 0, 0), max_guidelines=5, budget_tokens=0) == []
    from judgealign.memory.selection import guideline_cost

    tight = select_guidelines(
        gs, vecs, unit(0, 1, 0), max_guidelines=5, budget_tokens=guideline_cost(gs[1])
    )
    assert tight == [1]


def test_context_on_memory_and_unknown_dimension() -> None:
    eps = [episode("a"), episode("b")]
    dm = DimensionMemory(episodes=tuple(eps), episode_vectors=np.stack([unit(1, 0), unit(0, 1)]))
    mem = AlignmentMemory(embedder="fake", dim=2, dimensions={"d": dm})
    ctx = mem.context(
        "d",
        unit(1, 0),
        k=1,
        similarity_floor=0.0,
        max_per_group=1,
        max_guidelines=3,
        guideline_budget_tokens=100,
        exclude_items=set(),
    )
    assert [e.item for e, _ in ctx.episodes] == ["a"]
    empty = mem.context(
        "other",
        unit(1, 0),
        k=1,
        similarity_floor=0.0,
        max_per_group=1,
        max_guidelines=3,
        guideline_budget_tokens=100,
        exclude_items=set(),
    )
    assert empty.guidelines == () and empty.episodes == ()
