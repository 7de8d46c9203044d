"""Approximate nearest-neighbour search over episode vectors (an HNSW graph from usearch).

Only the candidate generator: ``EpisodeIndex`` re-scores every candidate with the exact
float32 cosine and applies its rules itself, so what this module gets wrong can only cost
recall (measured against exact search by ``bench/retrieval.py``), never a wrong similarity
or a broken rule.

Why usearch: a small, well-kept wheel with no dependency beyond numpy, SIMD kernels, int8
quantised graphs and a deterministic build when it is single-threaded (the same memory gives
the same graph, so every process, Spark executors included, retrieves the same examples).
faiss's IVF indexes need a k-means training pass that costs more than this graph's build at
1M episodes on 2 cores, and its HNSW build is multi-threaded (not reproducible).
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt

# HNSW settings (bench/retrieval.py measured recall and latency with them). 32 links per node,
# not usearch's 16: at 1M topical vectors a 16-link graph left about 1% of the true top 3
# unreachable (recall@3 stuck at 0.990 from beam 512 to 2048, 48 to 384 candidates), where 32
# links reached 0.998 at beam 256 in 1.6 ms, for the same single-threaded build time. A build
# beam of 128 is usearch's default; int8 storage halves the memory of f16 and loses no recall
# after the exact re-scoring.
CONNECTIVITY = 32
EXPANSION_ADD = 128
DTYPE = "i8"
# The search beam is tuned per graph, once, right after its build: the narrowest of BEAMS
# with which a fixed sample of the memory's own vectors (each leaving itself out) finds, as
# a query does (MIN_CANDIDATES candidates re-scored exactly, the best PROBE_K kept), the
# exact top PROBE_K in at least TARGET_RECALL of places. A fixed beam was not enough: 128
# gave recall@3 1.00 at 100k topical vectors but 0.955 at 1M (bench/retrieval.py).
BEAMS = (128, 256, 512, 1024)
# Above the product's goal (recall@3 >= 0.99): the probe is a 128-query sample, and a beam
# tuned to just reach 0.99 on it gave recall@3 0.988 on other queries at 1M episodes.
TARGET_RECALL = 0.998
PROBE_QUERIES = 128
PROBE_K = 10
# The fewest candidates an EpisodeIndex query asks the graph for (the tuning asks as many).
MIN_CANDIDATES = 32
EXPANSION_SEARCH = BEAMS[0]

_warned = threading.Event()


def load_usearch() -> Any | None:
    """The ``usearch.index`` module, or None (with one warning) when it cannot be imported."""
    try:
        import usearch.index as usearch_index
    except ImportError as exc:  # pragma: no cover - usearch is a core dependency
        if not _warned.is_set():
            _warned.set()
            warnings.warn(
                f"usearch could not be imported ({exc}); episodic retrieval over large memories "
                "falls back to exact search (slower): pip install usearch",
                RuntimeWarning,
                stacklevel=3,
            )
        return None
    return usearch_index


class ApproximateIndex:
    """An HNSW graph over some rows of a vector matrix; ``candidates`` gives row numbers.

    >>> import numpy as np
    >>> vecs = np.eye(4, dtype=np.float32)
    >>> ann = ApproximateIndex.build(vecs, np.arange(4))
    >>> ann.candidates(vecs[2], 1).tolist()
    [2]
    """

    def __init__(self, index: Any, size: int, beam: int = EXPANSION_SEARCH) -> None:
        self._index = index
        self.size = size
        self.beam = beam
        self.tuned_recall: float | None = None  # recall@10 of the probe sample at ``beam``
        self._lock = threading.Lock()  # the beam width is index state: one search at a time

    @classmethod
    def build(
        cls, vectors: npt.NDArray[np.float32], rows: npt.NDArray[np.int64]
    ) -> ApproximateIndex | None:
        """A graph over ``vectors[rows]`` keyed by row number; None without usearch."""
        usearch_index = load_usearch()
        if usearch_index is None:
            return None
        index = usearch_index.Index(
            ndim=int(vectors.shape[1]),
            metric="cos",
            dtype=DTYPE,
            connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD,
            expansion_search=EXPANSION_SEARCH,
        )
        # One thread: a multi-threaded build inserts in a racy order and makes another graph
        # each time; one graph per memory keeps retrieval the same in every process. The probe
        # sample goes in last: tuned while outside the graph, its vectors are queries like
        # any new item's (a node already in the graph is found through its own links).
        probes = _probe_sample(rows)
        rest = np.setdiff1d(rows, probes, assume_unique=True)
        index.add(rest, np.ascontiguousarray(vectors[rest]), threads=1)
        graph = cls(index, len(rows))
        if len(probes):
            graph.beam, graph.tuned_recall = graph.tune(vectors, rest, probes)
            index.add(probes, np.ascontiguousarray(vectors[probes]), threads=1)
        return graph

    def tune(
        self,
        vectors: npt.NDArray[np.float32],
        rows: npt.NDArray[np.int64],
        probes: npt.NDArray[np.int64],
    ) -> tuple[int, float]:
        """(the narrowest beam of ``BEAMS`` reaching ``TARGET_RECALL`` for ``probes`` as
        queries against the graph of ``rows``, the recall it reached): see ``BEAMS``. Past the
        widest beam, the widest is kept (its recall says how far it falls short)."""
        queries = np.ascontiguousarray(vectors[probes])
        nearest = _exact_top(vectors, rows, queries, PROBE_K)
        truth = [_best(t, vectors, q) for t, q in zip(nearest, queries, strict=True)]
        recall = 0.0
        for beam in BEAMS:
            with self._lock:
                self._index.expansion_search = beam
                found = self._index.search(queries, MIN_CANDIDATES, threads=1)
            keys = np.asarray(found.keys, dtype=np.int64).reshape(len(probes), -1)
            hits = sum(
                len(_best(k[k >= 0], vectors, q) & t)
                for k, q, t in zip(keys, queries, truth, strict=True)
            )
            recall = hits / max(1, sum(len(t) for t in truth))
            if recall >= TARGET_RECALL:
                return beam, recall
        return BEAMS[-1], recall

    @classmethod
    def from_bytes(cls, data: bytes, beam: int = EXPANSION_SEARCH) -> ApproximateIndex | None:
        """A graph saved by ``to_bytes`` (searched with ``beam``, the one its build tuned);
        None without usearch or when it cannot be read."""
        usearch_index = load_usearch()
        if usearch_index is None:
            return None
        try:
            index = usearch_index.Index.restore(bytearray(data))
        except (RuntimeError, ValueError):
            return None
        if index is None:
            return None
        return cls(index, len(index), beam)

    def to_bytes(self) -> bytes:
        return bytes(self._index.save())

    def candidates(self, query: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.int64]:
        """Up to ``count`` row numbers, nearest first (approximately)."""
        count = min(count, self.size)
        if count <= 0:
            return np.zeros(0, dtype=np.int64)
        with self._lock:
            # The beam must be as wide as the answer; wider costs time for little recall.
            self._index.expansion_search = max(self.beam, count)
            found = self._index.search(query, count, threads=1)
        return np.asarray(found.keys, dtype=np.int64)

    @property
    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)


def _probe_sample(rows: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The rows a graph is tuned with: a seeded sample (the same memory, the same beam);
    none for a graph too small to need tuning."""
    if len(rows) <= 8 * MIN_CANDIDATES:
        return np.zeros(0, dtype=np.int64)
    pick = np.random.default_rng(0).choice(len(rows), min(PROBE_QUERIES, len(rows) // 8), False)
    return np.sort(rows[pick])


def _best(cand: npt.NDArray[np.int64], vectors: npt.NDArray[np.float32], query: Any) -> set[int]:
    """The best ``PROBE_K`` of ``cand`` by exact dot product."""
    sims = vectors[cand] @ query
    order = np.lexsort((cand, -sims))[:PROBE_K]
    return set(cand[order].tolist())


def _exact_top(
    vectors: npt.NDArray[np.float32],
    rows: npt.NDArray[np.int64],
    queries: npt.NDArray[np.float32],
    k: int,
) -> list[npt.NDArray[np.int64]]:
    """The ``k`` rows (of ``rows``) nearest each query by dot product, in blocks of rows so a
    million-row memory never needs a queries x rows matrix."""
    best_sims = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    for start in range(0, len(rows), 65_536):
        block = rows[start : start + 65_536]
        sims = np.concatenate([best_sims, queries @ vectors[block].T], axis=1)
        cand = np.concatenate([best_rows, np.broadcast_to(block, (len(queries), len(block)))], 1)
        keep = np.argpartition(-sims, min(k, sims.shape[1] - 1), axis=1)[:, :k]
        best_sims = np.take_along_axis(sims, keep, axis=1)
        best_rows = np.take_along_axis(cand, keep, axis=1)
    return list(best_rows)
