"""Score blend: fitted weights, leave-group-out, N/A, persistence, and the judge using it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from judgealign.data.item import Item
from judgealign.data.label import Label
from judgealign.errors import DataError
from judgealign.judge.judge import Judge
from judgealign.judge.params import JudgeParams
from judgealign.memory.blend import MIN_BLEND_LABELS, ScoreBlend, fit_blend, neighbour_score
from judgealign.memory.records import Episode
from judgealign.memory.store import MEMORY_SCHEMA_VERSION, AlignmentMemory, DimensionMemory
from judgealign.rubric.model import Dimension, Rubric, Scale

SCALE = Scale(min=1, max=3, anchors={1: "bad", 2: "average", 3: "good"}, na_value=0)
RUBRIC = Rubric(
    id="t",
    name="test",
    dimensions=(Dimension(id="quality", name="Quality", description="Is it good?", scale=SCALE),),
)


def episode(n: int, score: float, judge: float | None, group: str | None = None) -> Episode:
    return Episode(
        id=f"i{n:03d}::quality::r",
        item=f"i{n:03d}",
        group=group or f"g{n:03d}",
        dimension="quality",
        rater="r",
        text=f"item {n}",
        score=score,
        judge_score=judge,
    )


def clustered(n: int, judge: str) -> tuple[list[Episode], np.ndarray]:
    """Two clusters of inputs: cluster 0 scored 1, cluster 1 scored 3 by the experts."""
    rng = np.random.default_rng(0)
    centers = np.eye(8, dtype=np.float32)[:2]
    eps, vecs = [], []
    for i in range(n):
        c = i % 2
        score = 1.0 if c == 0 else 3.0
        js = {"lenient": 3.0, "perfect": score, "none": None}[judge]
        eps.append(episode(i, score, js))
        v = centers[c] + 0.05 * rng.standard_normal(8).astype(np.float32)
        vecs.append(v / np.linalg.norm(v))
    return eps, np.array(vecs, dtype=np.float32)


def test_lenient_judge_gives_way_to_the_neighbours() -> None:
    eps, vecs = clustered(20, "lenient")
    blend = fit_blend(eps, vecs, SCALE, k=3)
    assert blend is not None
    assert blend.judge == 0.0 and blend.neighbours == 1.0
    assert blend.mae == pytest.approx(0.0) and blend.mae_judge == pytest.approx(1.0)
    assert blend.n_labels == 20


def test_perfect_judge_keeps_all_the_weight() -> None:
    eps, vecs = clustered(20, "perfect")
    # Neighbours are perfect too here: the tie goes to the judge.
    blend = fit_blend(eps, vecs, SCALE, k=3)
    assert blend is not None and blend.judge == 1.0 and blend.mae == 0.0


def test_neighbours_come_from_other_groups_only() -> None:
    # Pairs of one group share a vector and a score; across groups scores are unrelated, so
    # a fit that let a label see its own group's twin would find "perfect" neighbours.
    rng = np.random.default_rng(1)
    eps, vecs = [], []
    for g in range(12):
        v = rng.standard_normal(8).astype(np.float32)
        v /= np.linalg.norm(v)
        score = float(1 + g % 3)
        for twin in range(2):
            eps.append(episode(2 * g + twin, score, 2.0, group=f"g{g}"))
            vecs.append(v)
    blend = fit_blend(eps, np.array(vecs), SCALE, k=1)
    assert blend is not None and blend.mae_neighbours > 0.3
    nb = neighbour_score(np.array(vecs), eps, vecs[0], SCALE, k=1)
    assert nb == eps[0].score  # without the exclusion the twin is the nearest


def test_no_blend_without_judge_scores_or_enough_labels() -> None:
    eps, vecs = clustered(20, "none")
    assert fit_blend(eps, vecs, SCALE) is None
    eps, vecs = clustered(MIN_BLEND_LABELS - 1, "lenient")
    assert fit_blend(eps, vecs, SCALE) is None


def test_na_labels_are_neither_neighbours_nor_fitted() -> None:
    eps, vecs = clustered(20, "lenient")
    na = [e.model_copy(update={"score": 0.0}) if e.score == 1.0 else e for e in eps]
    blend = fit_blend(na, vecs, SCALE, k=3)
    assert blend is not None and blend.n_labels == 10 and blend.center == 3.0
    # Nearest to a cluster-0 vector are N/A episodes: the neighbours skip them.
    assert neighbour_score(vecs, na, vecs[0], SCALE, k=1) == 3.0


def test_neighbour_score_none_when_nothing_qualifies() -> None:
    eps, vecs = clustered(2, "lenient")
    assert neighbour_score(vecs, eps, vecs[0], SCALE, k=3, exclude_groups={"g000", "g001"}) is None
    assert neighbour_score(vecs[:0], [], vecs[0], SCALE, k=3) is None


def memory_with_blend() -> AlignmentMemory:
    eps, vecs = clustered(20, "lenient")
    mem = AlignmentMemory(
        embedder="fake",
        dim=8,
        dimensions={"quality": DimensionMemory(episodes=tuple(eps), episode_vectors=vecs)},
    )
    return mem.fit_blends({"quality": SCALE}, k=3, seed=0)


def test_blend_persists_and_is_applied_unless_na() -> None:
    mem = memory_with_blend()
    loaded = AlignmentMemory.from_json(mem.to_json())
    assert loaded.blends() == mem.blends() and "quality" in mem.blends()
    vec = mem.dimension("quality").episode_vectors[0]
    blended = loaded.blended("quality", vec, SCALE, 3.0, item="new")
    assert blended is not None and blended[0] == pytest.approx(1.0, abs=0.1)
    assert loaded.blended("quality", vec, SCALE, 0.0, item="new") is None  # judge said N/A
    assert loaded.blended("other", vec, SCALE, 3.0, item="new") is None


def test_older_memory_loads_and_newer_is_refused() -> None:
    data = json.loads(memory_with_blend().to_json())
    old = dict(data, schema_version=1)
    old["dimensions"] = {
        d: {k: v for k, v in dm.items() if k != "blend"} for d, dm in data["dimensions"].items()
    }
    assert AlignmentMemory.from_json(json.dumps(old)).blends() == {}
    with pytest.raises(DataError, match="newer"):
        AlignmentMemory.from_json(json.dumps(dict(data, schema_version=MEMORY_SCHEMA_VERSION + 1)))


def test_apply_sends_missing_neighbours_to_the_median() -> None:
    b = ScoreBlend(
        judge=0.2, neighbours=0.6, median=0.2, center=2.0, k=3, n_labels=10,
        mae=0.1, mae_judge=0.5, mae_neighbours=0.2, mae_median=0.6,
    )  # fmt: skip
    assert b.apply(3.0, 1.0) == pytest.approx(0.6 + 0.6 + 0.4)
    assert b.apply(3.0, None) == pytest.approx(0.6 + 1.6)


# -- through the Judge (fake provider) ------------------------------------------------------
WORDS = {1: "broken leakage failure crash wrong", 3: "excellent clean validated tuned solid"}


def items_and_labels(n: int) -> tuple[list[Item], list[Label]]:
    items, labels = [], []
    for i in range(n):
        score = 1 if i % 2 == 0 else 3
        items.append(Item(id=f"it{i:02d}", output=f"{WORDS[score]} number {i}"))
        labels.append(Label(item=f"it{i:02d}", dimension="quality", score=score, rater="x"))
    return items, labels


def test_judge_blends_a_lenient_judge_toward_the_experts() -> None:
    items, labels = items_and_labels(24)
    judge = Judge(RUBRIC, JudgeParams(model="fake:lenient", embedder="fake", blend=True))
    judge.fit(labels[:20], items[:20])
    assert judge.memory_ is not None
    blend = judge.memory_.blends()["quality"]
    assert blend.judge < 0.5 and blend.mae < blend.mae_judge
    blended, own = [], []
    for j in judge.predict(items[20:]):
        truth = 1 if int(j.item[2:]) % 2 == 0 else 3
        assert j.judge_score == 3.0 and j.neighbour_score is not None and j.score is not None
        blended.append(abs(j.score - truth))
        own.append(abs(j.judge_score - truth))
    assert np.mean(blended) < np.mean(own) / 2
    # The semantic-only ablation has no episodic memory: the judge's own score stands.
    sem = judge.variant("semantic").predict(items[20:21])[0]
    assert sem.score == 3.0 and sem.judge_score is None


def test_forget_refits_the_blend() -> None:
    items, labels = items_and_labels(24)
    judge = Judge(RUBRIC, JudgeParams(model="fake:lenient", embedder="fake", blend=True))
    judge.fit(labels, items)
    assert judge.memory_ is not None
    assert judge.memory_.blends()["quality"].n_labels == 24
    judge.forget([lb.id for lb in labels[:4]])
    assert judge.memory_.blends()["quality"].n_labels == 20
    judge.forget([lb.id for lb in labels[4:]])
    assert judge.memory_.blends() == {}


def test_blend_kept_only_when_it_beats_the_judge_on_held_out_groups() -> None:
    # One group: nothing to hold out, so the judge keeps all the weight.
    eps, vecs = clustered(20, "lenient")
    one = [e.model_copy(update={"group": "g"}) for e in eps]
    alone = fit_blend(one, vecs, SCALE, k=3)
    assert alone is not None and (alone.judge, alone.mae_heldout) == (1.0, None)
    # Noise everywhere: whatever the weights, a kept blend beat the judge on held-out groups.
    for seed in range(10):
        rng = np.random.default_rng(seed)
        noisy = [
            episode(n, float(rng.integers(1, 4)), float(rng.integers(1, 4))) for n in range(16)
        ]
        vs = rng.standard_normal((16, 8)).astype(np.float32)
        vs /= np.linalg.norm(vs, axis=1, keepdims=True)
        b = fit_blend(noisy, vs, SCALE, k=3, seed=seed)
        assert b is not None and b.mae_heldout is not None
        assert b.judge == 1.0 or b.mae_heldout < b.mae_judge
