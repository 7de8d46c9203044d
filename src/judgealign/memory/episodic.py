"""Episodic retrieval: cosine top-k with a floor, diversity and exclusions.

Every dimension keeps its episode embeddings in one contiguous float32 matrix (rows sorted
by episode id). Below ``APPROXIMATE_FROM`` episodes a query is exact: one matrix-vector
product plus a partial sort (about 1 ms at 10k 384-d episodes on 2 cores). A scan is
memory-bound and grows with the memory (13-22 ms at 100k), so from ``APPROXIMATE_FROM``
episodes on the candidates come from an HNSW graph (``memory.approximate``) and only those
are scored exactly: the rules, the exact cosines and the tie-break are the same, and what
the graph misses is measured against exact search (recall) by ``bench/retrieval.py``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

import numpy as np
import numpy.typing as npt

from judgealign.memory.approximate import MIN_CANDIDATES, ApproximateIndex
from judgealign.memory.records import Episode

# How many candidates to partially sort per wanted episode before the diversity filter.
OVERSAMPLE = 4
# Memories this large retrieve through the HNSW graph; smaller ones stay exact (their
# results never change). At 50k episodes an exact query costs ~6 ms on 2 cores and the graph's
# one-off build ~6 s (bench/retrieval.py), repaid after about a thousand queries.
APPROXIMATE_FROM = 50_000
# The approximate path asks the graph for at least MIN_CANDIDATES candidates (the number its
# search beam was tuned with), and gives up on it (exact search instead) when the rules would
# need more than this fraction of the episodes.
MAX_CANDIDATE_FRACTION = 0.25

FloatArray = npt.NDArray[np.float32]


class EpisodeIndex:
    """Search structure over one dimension's episodes (built once, reused for every query).

    ``approximate``: ``None`` chooses by size (``APPROXIMATE_FROM``); ``True``/``False``
    force the graph or the exact scan (benchmarks and tests compare the two). ``graph``: this
    index's graph and search beam as ``saved_graph`` gave them (a saved memory carries them),
    so that loading it costs no build and every process searches the same graph.

    >>> import numpy as np
    >>> from judgealign.memory.records import Episode
    >>> eps = [Episode(id=f"i{n}::d::r", item=f"i{n}", group=f"i{n}", dimension="d",
    ...                rater="r", text="t", score=1.0) for n in range(3)]
    >>> vecs = np.eye(3, dtype=np.float32)
    >>> idx = EpisodeIndex(vecs, eps)
    >>> [(r, round(s, 2)) for r, s in idx.search(vecs[1], k=2, similarity_floor=-1.0)]
    [(1, 1.0), (0, 0.0)]
    >>> idx.approximate
    False
    """

    def __init__(
        self,
        vectors: FloatArray,
        episodes: Sequence[Episode],
        *,
        approximate: bool | None = None,
        graph: tuple[bytes, int] | None = None,
    ) -> None:
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
        # Item codes number items in order of first appearance, as ``rows`` keys them.
        self._rows_of_code = list(self.item_rows.values())
        self.approximate = (
            len(episodes) >= APPROXIMATE_FROM if approximate is None else bool(approximate)
        )
        self._ann: ApproximateIndex | None = None
        self._ann_built = False
        self._saved_graph = graph

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    def prepare(self) -> EpisodeIndex:
        """Build the HNSW graph now (when this index uses one) rather than on the first
        query: a long first query would hold up every judgement waiting behind it."""
        if self.approximate:
            self._graph()
        return self

    def _graph(self) -> ApproximateIndex | None:
        if not self._ann_built:
            # One node per item: raters of one item share its rendered text and so its vector,
            # and a graph full of duplicates links poorly. Every row of a candidate item is
            # scored below, so no rater is lost.
            first = np.asarray(sorted(int(r[0]) for r in self.item_rows.values()), np.int64)
            ann = None
            if self._saved_graph is not None:
                ann = ApproximateIndex.from_bytes(*self._saved_graph)
                if ann is not None and ann.size != len(first):
                    ann = None  # not this memory's graph: build one
                self._saved_graph = None
            if ann is None and len(first):
                ann = ApproximateIndex.build(self.vectors, first)
            self._ann = ann
            self._ann_built = True
        return self._ann

    def saved_graph(self) -> tuple[bytes, int] | None:
        """The HNSW graph serialized, with its search beam (built first if needed); None for
        an exact index."""
        graph = self._graph() if self.approximate else None
        return (graph.to_bytes(), graph.beam) if graph is not None else None

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
        episodes out of the running. The cosines returned are exact either way.
        """
        if k <= 0 or len(self) == 0:
            return []
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if self.approximate:
            graph = self._graph()
            if graph is not None:
                found = self._search_graph(
                    graph, q, k, similarity_floor, max_per_group, exclude_items, exclude_groups
                )
                if found is not None:
                    return found
        return self._search_exact(
            q, k, similarity_floor, max_per_group, exclude_items, exclude_groups
        )

    def _excluded_rows(
        self, exclude_items: Collection[str], exclude_groups: Collection[str]
    ) -> npt.NDArray[np.int64]:
        parts = [self.item_rows[i] for i in exclude_items if i in self.item_rows]
        codes = [self.group_index[g] for g in exclude_groups if g in self.group_index]
        if codes:
            parts.append(np.flatnonzero(np.isin(self.group_codes, codes)))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def _search_graph(
        self,
        graph: ApproximateIndex,
        q: FloatArray,
        k: int,
        similarity_floor: float,
        max_per_group: int,
        exclude_items: Collection[str],
        exclude_groups: Collection[str],
    ) -> list[tuple[int, float]] | None:
        """The rules over the graph's candidates, widened until ``k`` qualify; None when
        they would need so many candidates that the exact scan is the better search."""
        excluded = self._excluded_rows(exclude_items, exclude_groups)
        limit = int(MAX_CANDIDATE_FRACTION * graph.size)
        # Excluded episodes and one-per-group collisions eat candidates: ask for more.
        want = max(MIN_CANDIDATES, 4 * k * OVERSAMPLE) + len(excluded)
        while True:
            if want > limit:
                return None
            nodes = graph.candidates(q, want)
            if not len(nodes):
                return None
            # Every rater of each candidate item is scored, as in the exact scan.
            rows = np.unique(
                np.concatenate([self._rows_of_code[c] for c in self.item_codes[nodes].tolist()])
            )
            sims = self.vectors[rows] @ q
            rank = sims.copy()
            rank[sims < similarity_floor] = -np.inf
            if len(excluded):
                rank[np.isin(rows, excluded)] = -np.inf
            keep = np.isfinite(rank)
            cand, cand_rank = rows[keep], rank[keep]
            order = cand[np.lexsort((cand, -cand_rank))]
            picked = self._diverse(order, k, max_per_group)
            exhausted = len(nodes) < want
            # Candidates come nearest first: once the farthest asked is below the floor,
            # wider asks bring only episodes the floor rejects.
            below_floor = len(nodes) > 0 and float(self.vectors[nodes[-1]] @ q) < similarity_floor
            if len(picked) >= k or exhausted or below_floor:
                lookup = dict(zip(rows.tolist(), sims.tolist(), strict=True))
                return [(r, float(lookup[r])) for r in picked]
            want *= OVERSAMPLE

    def _search_exact(
        self,
        q: FloatArray,
        k: int,
        similarity_floor: float,
        max_per_group: int,
        exclude_items: Collection[str],
        exclude_groups: Collection[str],
    ) -> list[tuple[int, float]]:
        n = len(self)
        sims = self.vectors @ q
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
