"""Gaps: what the agent gets wrong most often, per dimension.

The judge's rationales for low scores are embedded and grouped by average-linkage
agglomerative clustering on cosine distance (scipy), cut where groups stop being similar
(``similarity``, default 0.7); each group counts its notebooks and is shown through its most
central rationale. This is the view the reference study used to find what to fix in its
agent's guidance: not "data_imputation averages 1.8" but "imputer fitted before the split, 9
notebooks".

"Low" is a score below the scale's best by default (any lapse the judge names), or at most
``threshold`` where one is given per dimension.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from judgealign.agent.board import Gap, NotebookResult
from judgealign.providers.protocol import Embedder
from judgealign.rubric.model import Rubric, Scale

DEFAULT_SIMILARITY = 0.7
REASON_CHARS = 600
EXAMPLES = 3


def default_threshold(scale: Scale) -> float:
    """Scores at or beyond this count as low: one level short of the best."""
    return float(scale.min + 1 if scale.lower_is_better else scale.max - 1)


def is_low(score: float, scale: Scale, threshold: float) -> bool:
    return score >= threshold if scale.lower_is_better else score <= threshold


def group_texts(vectors: np.ndarray, similarity: float) -> list[int]:
    """A cluster label per row: average-linkage clusters whose members are, on average, at
    least ``similarity`` (cosine) alike.

    >>> group_texts(np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0]]), 0.8)
    [1, 1, 2]
    """
    n = vectors.shape[0]
    if n == 0:
        return []
    if n == 1:
        return [1]
    from scipy.cluster.hierarchy import fcluster, linkage

    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms == 0, 1.0, norms)
    z = linkage(v, method="average", metric="cosine")
    z[:, 2] = np.clip(np.nan_to_num(z[:, 2], nan=2.0), 0.0, None)
    labels = fcluster(z, t=1.0 - similarity, criterion="distance")
    # Renumber by first appearance so the labels do not depend on scipy's internal order.
    seen: dict[int, int] = {}
    return [seen.setdefault(int(x), len(seen) + 1) for x in labels]


async def find_gaps(
    notebooks: Sequence[NotebookResult],
    rubric: Rubric,
    dimensions: Sequence[str],
    embedder: Embedder,
    *,
    thresholds: Mapping[str, float] | None = None,
    similarity: float = DEFAULT_SIMILARITY,
) -> list[Gap]:
    """The gaps of every dimension, largest group first."""
    out: list[Gap] = []
    for dim in dimensions:
        scale = rubric.dimension(dim).scale
        limit = (thresholds or {}).get(dim, default_threshold(scale))
        rows = [
            (nb, j)
            for nb in notebooks
            for j in nb.judgements
            if j.dimension == dim
            and j.ok
            and j.score is not None
            and not scale.is_na(j.score)
            and is_low(j.score, scale, limit)
        ]
        if not rows:
            continue
        texts = [(j.rationale.strip() or "(no rationale given)")[:REASON_CHARS] for _, j in rows]
        vectors = np.asarray(await embedder.embed(texts), dtype=np.float64)
        labels = group_texts(vectors, similarity)
        members: dict[int, list[int]] = {}
        for row, label in enumerate(labels):
            members.setdefault(label, []).append(row)
        gaps = []
        for idx in members.values():
            sub = vectors[idx]
            central = idx[int(np.argmax((sub @ sub.T).mean(axis=1)))]
            others = list(dict.fromkeys(texts[i] for i in idx if texts[i] != texts[central]))
            scores = [float(rows[i][1].score) for i in idx]  # type: ignore[arg-type]
            gaps.append(
                Gap(
                    dimension=dim,
                    reason=texts[central],
                    count=len(idx),
                    mean_score=sum(scores) / len(scores),
                    notebooks=tuple(dict.fromkeys(rows[i][0].id for i in idx)),
                    cases=tuple(dict.fromkeys(rows[i][0].case for i in idx)),
                    examples=tuple(others[:EXAMPLES]),
                )
            )
        gaps.sort(
            key=lambda g: (-g.count, g.mean_score if not scale.lower_is_better else -g.mean_score)
        )
        out.extend(gaps)
    return out
