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


# -- exact below the threshold, approximate (HNSW) above it -------------------------------------


def reference_search(
    vectors: np.ndarray,
    eps: list[Episode],
    q: np.ndarray,
    *,
    k: int,
    floor: float,
    max_per_group: int = 1,
    exclude_items: frozenset[str] = frozenset(),
    exclude_groups: frozenset[str] = frozenset(),
) -> list[int]:
    """The rules written out plainly: every episode, best first, ties to the lower row."""
    sims = vectors @ q
    order = sorted(range(len(eps)), key=lambda r: (-float(sims[r]), r))
    picked: list[int] = []
    per_group: dict[str, int] = {}
    items: set[str] = set()
    for r in order:
        e = eps[r]
        if sims[r] < floor or e.item in exclude_items or e.group in exclude_groups:
            continue
        if per_group.get(e.group, 0) >= max_per_group or e.item in items:
            continue
        per_group[e.group] = per_group.get(e.group, 0) + 1
        items.add(e.item)
        picked.append(r)
        if len(picked) == k:
            break
    return picked


def topical_memory(n_items: int, seed: int = 0) -> tuple[np.ndarray, list[Episode], np.ndarray]:
    """Items about shared topics (low-dimensional spread around topic centres), some rated by
    two raters (same vector), four items per input group; plus queries from the same topics."""
    rng = np.random.default_rng(seed)
    dim, topics, latent = 64, 12, 6
    centres = rng.standard_normal((topics, dim))
    bases = rng.standard_normal((topics, dim, latent)) / np.sqrt(latent)

    def draw(n: int) -> np.ndarray:
        t = rng.integers(0, topics, size=n)
        v = centres[t] + 0.7 * np.einsum("nij,nj->ni", bases[t], rng.standard_normal((n, latent)))
        v += 0.05 * rng.standard_normal((n, dim))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    item_vecs = draw(n_items)
    pairs: list[tuple[Episode, np.ndarray]] = []
    for i in range(n_items):
        item = f"it{i:05d}"
        for rater in ("ann", "bob") if i % 3 == 0 else ("ann",):
            pairs.append((episode(item, group=f"g{i // 4}", rater=rater), item_vecs[i]))
    pairs.sort(key=lambda p: p[0].id)
    return np.stack([v for _, v in pairs]), [e for e, _ in pairs], draw(60)


def test_small_memories_stay_exact_and_match_the_rules_written_out() -> None:
    vectors, eps, queries = topical_memory(900)
    idx = EpisodeIndex(vectors, eps)
    assert idx.approximate is False  # far below APPROXIMATE_FROM
    for n, q in enumerate(queries):
        rules = {
            "k": 1 + n % 4,
            "floor": (-1.0, 0.2, 0.5)[n % 3],
            "max_per_group": 1 + n % 2,
            "exclude_items": frozenset({eps[n * 7].item}),
            "exclude_groups": frozenset({eps[n * 11].group}) if n % 2 else frozenset(),
        }
        got = idx.search(
            q,
            k=rules["k"],  # type: ignore[arg-type]
            similarity_floor=rules["floor"],  # type: ignore[arg-type]
            max_per_group=rules["max_per_group"],  # type: ignore[arg-type]
            exclude_items=rules["exclude_items"],  # type: ignore[arg-type]
            exclude_groups=rules["exclude_groups"],  # type: ignore[arg-type]
        )
        assert [r for r, _ in got] == reference_search(vectors, eps, q, **rules)  # type: ignore[arg-type]


def test_approximate_search_keeps_the_rules_and_exact_cosines_with_high_recall() -> None:
    vectors, eps, queries = topical_memory(3000)
    approx = EpisodeIndex(vectors, eps, approximate=True)
    exact = EpisodeIndex(vectors, eps, approximate=False)
    found = wanted = 0
    for n, q in enumerate(queries):
        kwargs = {
            "k": 3,
            "similarity_floor": 0.2,
            "max_per_group": 1,
            "exclude_items": {eps[n].item},
            "exclude_groups": {eps[n * 13].group},
        }
        got = approx.search(q, **kwargs)  # type: ignore[arg-type]
        truth = exact.search(q, **kwargs)  # type: ignore[arg-type]
        for r, sim in got:  # every hit obeys the rules, with its exact cosine
            assert abs(sim - float(vectors[r] @ q)) < 1e-5 and sim >= 0.2
            assert eps[r].item != eps[n].item and eps[r].group != eps[n * 13].group
        assert len({eps[r].group for r, _ in got}) == len(got)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        # Raters of one item share a node: the lower-id rater is the one shown, as exactly.
        assert all(eps[r].rater == "ann" for r, _ in got)
        found += len({r for r, _ in got} & {r for r, _ in truth})
        wanted += len(truth)
    assert found / wanted >= 0.98


def test_approximate_search_is_deterministic_across_builds() -> None:
    vectors, eps, queries = topical_memory(2000, seed=3)
    builds = [EpisodeIndex(vectors, eps, approximate=True) for _ in range(2)]
    runs = [[idx.search(q, k=3, similarity_floor=0.0) for q in queries] for idx in builds]
    assert runs[0] == runs[1]


def test_approximate_search_widens_then_falls_back_to_exact() -> None:
    vectors, eps, queries = topical_memory(1200, seed=5)
    approx = EpisodeIndex(vectors, eps, approximate=True).prepare()
    exact = EpisodeIndex(vectors, eps, approximate=False)
    q = queries[0]
    # A floor almost nothing clears: fewer than k qualify, and the answer is still exact.
    kw = {"k": 3, "similarity_floor": 0.9}
    assert approx.search(q, **kw) == exact.search(q, **kw)  # type: ignore[arg-type]
    # Excluding most groups needs more candidates than the graph path takes: exact search.
    groups = {e.group for e in eps[: int(0.8 * len(eps))]}
    kw2 = {"k": 2, "similarity_floor": -1.0, "exclude_groups": groups}
    assert approx.search(q, **kw2) == exact.search(q, **kw2)  # type: ignore[arg-type]


def test_without_usearch_large_memories_fall_back_to_exact(monkeypatch: object) -> None:
    import judgealign.memory.approximate as approximate

    vectors, eps, queries = topical_memory(500, seed=7)
    monkeypatch.setattr(approximate, "load_usearch", lambda: None)  # type: ignore[attr-defined]
    approx = EpisodeIndex(vectors, eps, approximate=True)
    exact = EpisodeIndex(vectors, eps, approximate=False)
    for q in queries[:10]:
        assert approx.search(q, k=3, similarity_floor=0.1) == exact.search(
            q, k=3, similarity_floor=0.1
        )


def test_a_saved_large_memory_carries_its_graph_and_old_files_still_load(
    monkeypatch: object,
) -> None:
    import json

    import judgealign.memory.episodic as episodic
    import judgealign.memory.store as store

    vectors, eps, queries = topical_memory(800, seed=11)
    monkeypatch.setattr(episodic, "APPROXIMATE_FROM", 500)  # type: ignore[attr-defined]
    dm = DimensionMemory(episodes=tuple(eps), episode_vectors=vectors)
    memory = AlignmentMemory(embedder="fake", dim=vectors.shape[1], dimensions={"d": dm})
    kw = {
        "k": 3,
        "similarity_floor": 0.1,
        "max_per_group": 1,
        "max_guidelines": 0,
        "guideline_budget_tokens": 0,
        "exclude_items": set(),
    }
    before = [memory.context("d", q, **kw).episodes for q in queries[:20]]  # type: ignore[arg-type]
    text = memory.to_json()
    data = json.loads(text)
    assert data["schema_version"] == store.MEMORY_SCHEMA_VERSION == 5
    assert data["dimensions"]["d"]["episode_graph"]["library"] == "usearch"
    beam = data["dimensions"]["d"]["episode_graph"]["beam"]
    assert beam == memory.dimension("d").index._graph().beam  # type: ignore[union-attr]

    built: list[int] = []
    real_build = episodic.ApproximateIndex.build
    monkeypatch.setattr(  # type: ignore[attr-defined]
        episodic.ApproximateIndex, "build", lambda *a: built.append(1) or real_build(*a)
    )
    loaded = AlignmentMemory.from_json(text)
    after = [loaded.context("d", q, **kw).episodes for q in queries[:20]]  # type: ignore[arg-type]
    assert loaded.dimension("d").index._graph().beam == beam  # type: ignore[union-attr]
    assert after == before and built == []  # the saved graph is searched, nothing rebuilt

    # A graph that does not match the episodes (edited file) is ignored and rebuilt.
    data["dimensions"]["d"]["episodes"] = data["dimensions"]["d"]["episodes"][:-1]
    vec = loaded.dimension("d").episode_vectors[:-1]
    data["dimensions"]["d"]["episode_vectors"] = json.loads(
        DimensionMemory(episodes=tuple(eps[:-1]), episode_vectors=vec).model_dump_json()
    )["episode_vectors"]
    edited = AlignmentMemory.from_json(json.dumps(data))
    _ = edited.context("d", queries[0], **kw)  # type: ignore[arg-type]
    assert built == [1]

    # A version-4 file (no graph) loads and builds its graph on first use.
    old = json.loads(text)
    old["schema_version"] = 4
    del old["dimensions"]["d"]["episode_graph"]
    v4 = AlignmentMemory.from_json(json.dumps(old))
    assert [v4.context("d", q, **kw).episodes for q in queries[:20]] == before  # type: ignore[arg-type]


def test_the_search_beam_is_tuned_on_held_out_probes_until_recall_is_reached() -> None:
    from judgealign.memory import approximate

    vectors, eps, _ = topical_memory(2500, seed=13)
    idx = EpisodeIndex(vectors, eps, approximate=True).prepare()
    graph = idx._graph()
    assert graph is not None and graph.beam in approximate.BEAMS
    assert graph.tuned_recall is not None and graph.tuned_recall >= approximate.TARGET_RECALL
    assert len(graph._index) == len(idx.item_rows)  # the probes joined the graph after tuning
