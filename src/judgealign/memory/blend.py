"""Score blend: the judge's score stacked with its nearest labelled examples' expert scores.

Examples in the prompt only help a judge that reads them; a small or miscalibrated judge
ignores them (bench: a 0.5B judge on CoNaLa ranks snippets no better than chance while the
mean expert score of its retrieved examples is closer to the truth than its own score). The
blend uses the episodic memory numerically instead::

    score = w_judge * judge + w_neighbours * neighbours + w_median * median

``neighbours`` is the similarity-weighted mean expert score of the k nearest applicable
labelled items, ``median`` the median applicable expert score. The weights are fitted per
dimension on the training labels only: each label is predicted from the unaligned judge's
score on its item (the ``calibrate`` run) and from its neighbours among the *other input
groups* (leave-group-out, like grouped folds), and the weights minimizing mean absolute
error win on a simplex grid, unless weights chosen that way on some groups fail to beat the
judge alone on the other groups (inner grouped folds): then the judge keeps all the weight.
A judge that deserves trust keeps a weight near 1; the fitted weights are a diagnostic in
themselves ("the judge adds 10% to what the labels already say").

The judge is weighted from its unaligned scores, so an aligned judge that reads its context
well is under-weighted: the blend is conservative about what the memory context adds.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from judgealign.data.folds import inner_group_folds
from judgealign.memory.records import Episode
from judgealign.rubric.model import Scale

BLEND_SCHEMA_VERSION = 1
# Below this many usable training labels three weights are too noisy to fit.
MIN_BLEND_LABELS = 8
GRID_STEPS = 20  # weights on multiples of 1/20
# O(n^2) leave-group-out fit: beyond this many labels a seeded sample fits the weights.
MAX_FIT_LABELS = 2000
INNER_FOLDS = 5  # grouped folds inside the training labels that check the weights


class ScoreBlend(BaseModel):
    """Fitted blend weights of one dimension, with the training errors that chose them.

    >>> b = ScoreBlend(judge=0.5, neighbours=0.5, median=0.0, center=2.0, k=5, n_labels=20,
    ...                mae=0.4, mae_judge=0.6, mae_neighbours=0.5, mae_median=0.7)
    >>> b.apply(3.0, 2.0)
    2.5
    >>> b.apply(3.0, None)  # no neighbour qualified: its weight goes to the median
    2.5
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = BLEND_SCHEMA_VERSION
    judge: float = Field(ge=0.0, le=1.0)
    neighbours: float = Field(ge=0.0, le=1.0)
    median: float = Field(ge=0.0, le=1.0)
    center: float  # the median applicable expert score
    k: int = Field(ge=1)
    n_labels: int = Field(ge=0)
    # Leave-group-out training MAE of the blend and of each component alone; ``mae_heldout``:
    # the blend's MAE when its weights are chosen without the scored labels' groups.
    mae: float
    mae_heldout: float | None = None
    mae_judge: float
    mae_neighbours: float
    mae_median: float

    def apply(self, judge_score: float, neighbour_score: float | None) -> float:
        nb = self.center if neighbour_score is None else neighbour_score
        return float(self.judge * judge_score + self.neighbours * nb + self.median * self.center)


class NeighbourTable:
    """One dimension's applicable labelled items, built once and queried per label or judgement.

    Several raters of one item count as one neighbour (their mean score). Rows follow item
    ids, so ties in similarity go to the smaller id.
    """

    def __init__(self, vectors: np.ndarray, episodes: Sequence[Episode], scale: Scale) -> None:
        self.vectors = np.asarray(vectors, dtype=np.float32)
        first: dict[str, int] = {}
        scores: dict[str, list[float]] = {}
        for row, ep in enumerate(episodes):
            if not scale.is_na(ep.score):
                first.setdefault(ep.item, row)
                scores.setdefault(ep.item, []).append(ep.score)
        self.items = sorted(first)
        self.rows = np.array([first[i] for i in self.items], dtype=np.int64)
        self.means = np.array([float(np.mean(scores[i])) for i in self.items])
        self._position = {item: n for n, item in enumerate(self.items)}
        self._group_positions: dict[str, list[int]] = {}
        for n, item in enumerate(self.items):
            self._group_positions.setdefault(episodes[first[item]].group, []).append(n)

    def score(
        self,
        query: np.ndarray,
        *,
        k: int,
        exclude_items: Collection[str] = (),
        exclude_groups: Collection[str] = (),
    ) -> float | None:
        """Similarity-weighted mean expert score of the ``k`` nearest items left after the
        exclusions; ``None`` when none is left."""
        if not self.items:
            return None
        keep = np.ones(len(self.items), dtype=bool)
        for item in exclude_items:
            if item in self._position:
                keep[self._position[item]] = False
        for group in exclude_groups:
            keep[self._group_positions.get(group, [])] = False
        cand = np.flatnonzero(keep)
        if cand.size == 0:
            return None
        sims = (self.vectors @ np.asarray(query, dtype=np.float32).ravel())[self.rows]
        nearest = cand[np.lexsort((cand, -sims[cand]))][:k]
        weights = np.maximum(sims[nearest].astype(np.float64), 0.0)
        values = self.means[nearest]
        if weights.sum() <= 0.0:
            return float(values.mean())
        return float((weights * values).sum() / weights.sum())


def neighbour_score(
    vectors: np.ndarray,
    episodes: Sequence[Episode],
    query: np.ndarray,
    scale: Scale,
    *,
    k: int,
    exclude_items: Collection[str] = (),
    exclude_groups: Collection[str] = (),
) -> float | None:
    """Similarity-weighted mean expert score of the ``k`` nearest applicable items.

    Several raters of one item count as one neighbour (their mean score). ``None`` when no
    applicable episode is left after the exclusions. Many queries on one set of episodes:
    build a ``NeighbourTable`` once.

    >>> eps = [Episode(id=f"i{n}::d::r", item=f"i{n}", group=f"g{n}", dimension="d",
    ...                rater="r", text="t", score=float(n + 1)) for n in range(3)]
    >>> vecs = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
    >>> scale = Scale(min=1, max=3, anchors={1: "bad", 2: "ok", 3: "good"})
    >>> round(neighbour_score(vecs, eps, np.array([1.0, 0.0]), scale, k=2), 3)
    1.444
    """
    return NeighbourTable(vectors, episodes, scale).score(
        query, k=k, exclude_items=exclude_items, exclude_groups=exclude_groups
    )


def _grid() -> np.ndarray:
    rows = [
        (a / GRID_STEPS, b / GRID_STEPS, (GRID_STEPS - a - b) / GRID_STEPS)
        for a in range(GRID_STEPS, -1, -1)  # judge weight first, high to low: ties trust it
        for b in range(GRID_STEPS - a, -1, -1)
    ]
    return np.array(rows)


def fit_blend(
    episodes: Sequence[Episode],
    vectors: np.ndarray,
    scale: Scale,
    *,
    k: int = 5,
    seed: int = 0,
) -> ScoreBlend | None:
    """Blend weights from the episodes that carry the unaligned judge's score.

    ``None`` when fewer than ``MIN_BLEND_LABELS`` episodes have an applicable expert score
    and an applicable judge score (alignment ran without the judge on training items).
    """
    applicable = [e.score for e in episodes if not scale.is_na(e.score)]
    rows = [
        n
        for n, e in enumerate(episodes)
        if not scale.is_na(e.score) and e.judge_score is not None and not scale.is_na(e.judge_score)
    ]
    if len(rows) < MIN_BLEND_LABELS or not applicable:
        return None
    if len(rows) > MAX_FIT_LABELS:
        rng = np.random.default_rng(seed)
        rows = sorted(rng.choice(rows, size=MAX_FIT_LABELS, replace=False).tolist())
    center = float(np.median(applicable))
    y = np.array([episodes[n].score for n in rows])
    judge = np.array([float(episodes[n].judge_score or 0.0) for n in rows])
    table = NeighbourTable(vectors, episodes, scale)
    nb = np.array(
        [
            _or(table.score(vectors[n], k=k, exclude_groups={episodes[n].group}), center)
            for n in rows
        ]
    )
    grid = _grid()
    errors = np.abs(grid[:, :1] * judge + grid[:, 1:2] * nb + grid[:, 2:] * center - y)
    best = _argmin(errors)
    mae_judge = float(np.abs(judge - y).mean())
    heldout = _heldout_mae(errors, [episodes[n].group for n in rows], seed)
    if heldout is None or heldout >= mae_judge:
        best = 0  # grid row 0 is the judge alone: the blend did not survive held-out labels
    w_judge, w_nb, w_median = (float(x) for x in grid[best])
    return ScoreBlend(
        judge=w_judge,
        neighbours=w_nb,
        median=w_median,
        center=center,
        k=k,
        n_labels=len(rows),
        mae=float(errors[best].mean()),
        mae_heldout=heldout,
        mae_judge=mae_judge,
        mae_neighbours=float(np.abs(nb - y).mean()),
        mae_median=float(np.abs(center - y).mean()),
    )


def _argmin(errors: np.ndarray) -> int:
    # First minimum (rounded so float noise cannot break ties): high judge weights come first.
    return int(np.argmin(np.round(errors.mean(axis=1), 12)))


def _heldout_mae(errors: np.ndarray, groups: Sequence[str], seed: int) -> float | None:
    """MAE of weights chosen without each inner fold's groups, on that fold (None: < 2 groups).

    Three weights picked from a grid on a few dozen labels overfit; a blend is kept only if
    weights chosen on the other groups still beat the judge alone on held-out ones.
    """
    folds = inner_group_folds(groups, INNER_FOLDS, seed)
    if folds is None:
        return None
    out = np.empty(errors.shape[1])
    for f in np.unique(folds):
        test = folds == f
        out[test] = errors[_argmin(errors[:, ~test]), test]
    return float(out.mean())


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
