"""Episodic retrieval: vectorized cosine top-k with a floor, diversity and exclusions.

Every dimension keeps its episode embeddings in one contiguous float32 matrix (rows sorted
by episode id), so a query is one matrix-vector product plus a partial sort; at 100k
384-d episodes that is a few milliseconds (see ``bench/retrieval.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt

from judgealign.memory.records import Episode

# How many candidates to partially sort per wanted episode before the diversity filter.
OVERSAMPLE = 4

FloatArray = npt.NDArray[np.float32]


class EpisodeIndex:
    """Search structure over one dimension's episodes (built once, reused for every query).

    >>> import numpy as np
    >>> from judgealign.memory.records import Episode
    >>> eps = [Episode(id=f"i{n}::d::r", item=f"i{n}", group=f"i{n}", dimension="d",
    ...                rater="r", text="t", score=1.0) for n in range(3)]
    >>> vecs = np.eye(3, dtype=np.float32)
    >>> idx = EpisodeIndex(vecs, eps)
    >>> [(r, round(s, 2)) for r, s in idx.search(vecs[1], k=2, similarity_floor=-1.0)]
    [(1, 1.0), (0, 0.0)]
    """

    def __init__(self, vectors: FloatArray, episodes: Sequence[Episode]) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        groups: dict[str, int] = {}
        items: dict[str, int] = {}
        self.group_codes = np.fromiter(
            (groups.setdefault(e.group, len(groups)) for e in episodes),
            dtype=np.int64,
            count=len(episodes),
        )
        self.item_codes = np.fromiter(
            (items.setdefault(e.item, len(items)) for e in episodes),
            dtype=np.int64,
            count=len(episodes),
        )
        self.group_index = groups  # group name -> its code in group_codes
        rows: dict[str, list[int]] = defaultdict(list)
        for n, e in enumerate(episodes):
            rows[e.item].append(n)
        self.item_rows = {k: np.asarray(v, dtype=np.int64) for k, v in rows.items()}

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def search(
        self,
        query: FloatArray,
        *,
        k: int,
        similarity_floor: float,
        max_per_group: int = 1,
        exclude_items: Collection[str] = (),
        exclude_groups: Collection[str] = (),
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(row, cosine)`` pairs, best first.

        Rules: cosine below ``similarity_floor`` never qualifies; at most ``max_per_group``
        episodes per group and one per item (several raters of one item never fill several
        slots); ties go to the lower row, i.e. the smaller episode id, so results are
        deterministic. ``exclude_items`` and ``exclude_groups`` take those items' or groups'
        episodes out of the running.
        """
        n = len(self)
        if k <= 0 or n == 0:
            return []
        sims = self.vectors @ np.asarray(query, dtype=np.float32).reshape(-1)
        rank = sims.copy()
        rank[sims < similarity_floor] = -np.inf
        for item in exclude_items:
            rows = self.item_rows.get(item)
            if rows is not None:
                rank[rows] = -np.inf
        for group in exclude_groups:
            code = self.group_index.get(group)
            if code is not None:
                rank[self.group_codes == code] = -np.inf
        m = min(n, k * OVERSAMPLE)
        while True:
            if m >= n:
                cand = np.flatnonzero(np.isfinite(rank))
            else:
                threshold = np.partition(rank, n - m)[n - m]
                # ">=" keeps every tie at the boundary, so the tie-break below decides.
                cand = np.flatnonzero((rank >= threshold) & np.isfinite(rank))
            order = cand[np.lexsort((cand, -rank[cand]))]
            picked = self._diverse(order, k, max_per_group)
            if len(picked) >= k or m >= n or len(cand) < m:
                return [(int(r), float(sims[r])) for r in picked]
            m = min(n, m * OVERSAMPLE)

    def _diverse(self, order: npt.NDArray[np.int64], k: int, max_per_group: int) -> list[int]:
        per_group: dict[int, int] = defaultdict(int)
        seen_items: set[int] = set()
        picked: list[int] = []
        for row in order.tolist():
            g = int(self.group_codes[row])
            it = int(self.item_codes[row])
            if per_group[g] >= max_per_group or it in seen_items:
                continue
            per_group[g] += 1
            seen_items.add(it)
            picked.append(row)
            if len(picked) == k:
                break
        return picked
