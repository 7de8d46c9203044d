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

# HNSW settings (bench/retrieval.py measured recall and latency with them): 16 links per node
# and a build beam of 128 are usearch's defaults; int8 storage halves the memory of f16 and
# loses no recall after the exact re-scoring. A search beam of 128 (usearch's default is 64)
# took recall@3 on the isotropic stress vectors at 60k from 0.96 to 1.00 for +0.03 ms.
CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 128
DTYPE = "i8"

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

    def __init__(self, index: Any, size: int) -> None:
        self._index = index
        self.size = size
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
        # each time; one graph per memory keeps retrieval the same in every process.
        index.add(rows, np.ascontiguousarray(vectors[rows]), threads=1)
        return cls(index, len(rows))

    @classmethod
    def from_bytes(cls, data: bytes) -> ApproximateIndex | None:
        """A graph saved by ``to_bytes``; None without usearch or when it cannot be read."""
        usearch_index = load_usearch()
        if usearch_index is None:
            return None
        try:
            index = usearch_index.Index.restore(bytearray(data))
        except (RuntimeError, ValueError):
            return None
        if index is None:
            return None
        return cls(index, len(index))

    def to_bytes(self) -> bytes:
        return bytes(self._index.save())

    def candidates(self, query: npt.NDArray[np.float32], count: int) -> npt.NDArray[np.int64]:
        """Up to ``count`` row numbers, nearest first (approximately)."""
        count = min(count, self.size)
        if count <= 0:
            return np.zeros(0, dtype=np.int64)
        with self._lock:
            # The beam must be as wide as the answer; wider costs time for little recall.
            self._index.expansion_search = max(EXPANSION_SEARCH, count)
            found = self._index.search(query, count, threads=1)
        return np.asarray(found.keys, dtype=np.int64)

    @property
    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)
