"""Episodic retrieval at 10k, 100k and 1M episodes (384-d): latency and recall against exact.

Run: ``OPENBLAS_NUM_THREADS=1 python bench/retrieval.py [--sizes 10000,100000,1000000]``
-> prints a table, writes ``bench/results/retrieval.json``.

Every query goes through ``AlignmentMemory.context`` (guideline selection included) with the
product's rules: k=3 examples, similarity floor 0.2, one per input group and item, the
query's own item excluded. For each size the same queries run twice: through the index the
memory chooses by size (exact below ``APPROXIMATE_FROM``, the HNSW graph from there on: its
one-off build, single-threaded, and what loading it from a saved memory costs are reported) and
through a forced exact scan, whose answers are the truth for recall@3 (the share of the
exact answer's episodes the chosen index returned, under the same rules).

Two kinds of vectors, both seeded:

- ``topical`` (the goals are read on it): items about 256 topics, each spread over a
  24-dimensional subspace around its topic's centre with a little isotropic noise; nearest
  neighbours at cosine ~0.8, unrelated items ~0: the shape of real sentence embeddings, whose
  intrinsic dimension is far below 384.
- ``isotropic`` (a stress case, the generator this benchmark used before 0.3): 64 centres
  buried in 384-d Gaussian noise (norm 1.6 against the centre's 1), so within a centre the
  neighbours are nearly equidistant (cosine ~0.4 vs ~0.3): no index can rank them cheaply.

On a busy 2-core machine multi-threaded BLAS contends; ``OPENBLAS_NUM_THREADS=1`` gave the
steadier figures.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_rss_mb, write_result
from judgealign.memory.approximate import ApproximateIndex
from judgealign.memory.episodic import APPROXIMATE_FROM, EpisodeIndex
from judgealign.memory.records import Episode, Guideline
from judgealign.memory.store import AlignmentMemory, DimensionMemory

DIM = 384
SIZES = (10_000, 100_000, 1_000_000)
QUERIES = 200
WARMUP = 20
SEED = 0
K = 3
FLOOR = 0.2
GOALS = {100_000: 2.0, 1_000_000: 10.0}  # median ms per query
RECALL_GOAL = 0.99


def _normalize(v: np.ndarray) -> np.ndarray:
    out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out


class Topical:
    """Topic centres with a low-dimensional spread each (see the module docstring)."""

    def __init__(self, rng: np.random.Generator, topics: int = 256, latent: int = 24) -> None:
        self.rng = rng
        self.latent = latent
        self.centres = _normalize(rng.standard_normal((topics, DIM)).astype(np.float32))
        self.bases = np.stack(
            [np.linalg.qr(rng.standard_normal((DIM, latent)))[0] for _ in range(topics)]
        ).astype(np.float32)

    def draw(self, n: int) -> np.ndarray:
        out = np.empty((n, DIM), dtype=np.float32)
        step = 20_000
        for start in range(0, n, step):
            m = min(step, n - start)
            t = self.rng.integers(0, len(self.centres), size=m)
            z = self.rng.standard_normal((m, self.latent)).astype(np.float32)
            v = self.centres[t] + 0.6 / np.sqrt(self.latent) * np.einsum(
                "nij,nj->ni", self.bases[t], z
            )
            v += 0.02 * self.rng.standard_normal((m, DIM)).astype(np.float32)
            out[start : start + m] = _normalize(v)
        return out


class Isotropic:
    """64 centres in heavy isotropic noise (the pre-0.3 generator of this benchmark)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.centres = _normalize(rng.standard_normal((64, DIM)).astype(np.float32))

    def draw(self, n: int) -> np.ndarray:
        out = np.empty((n, DIM), dtype=np.float32)
        step = 100_000
        for start in range(0, n, step):
            m = min(step, n - start)
            pick = self.rng.integers(0, len(self.centres), size=m)
            noise = 0.08 * self.rng.standard_normal((m, DIM)).astype(np.float32)
            out[start : start + m] = _normalize(self.centres[pick] + noise)
        return out


def build(vectors: np.ndarray, rng: np.random.Generator) -> AlignmentMemory:
    n = len(vectors)
    score = rng.integers(1, 4, size=n)
    # model_construct: a million validated pydantic models would take longer than the index.
    episodes = tuple(
        Episode.model_construct(
            id=f"item{i:07d}::d::expert",
            item=f"item{i:07d}",
            group=f"g{i // 4}",
            dimension="d",
            rater="expert",
            text="...",
            score=float(score[i]),
            rationale="...",
        )
        for i in range(n)
    )
    guidelines = tuple(
        Guideline.create(
            "d", f"Rule {g}: condition -> score {g % 3 + 1}.", (f"item{g:07d}::d::expert",)
        )
        for g in range(12)
    )
    dm = DimensionMemory.model_construct(
        guidelines=guidelines,
        guideline_scores=tuple(float(g % 3 + 1) for g in range(12)),
        guideline_vectors=vectors[:12].copy(),
        episodes=episodes,
        episode_vectors=vectors,
        failures=(),
        episode_graph=None,
    )
    return AlignmentMemory(embedder="bench", dim=DIM, dimensions={"d": dm})


def timed(memory: AlignmentMemory, queries: np.ndarray) -> tuple[list[float], list[list[str]]]:
    lat: list[float] = []
    hits: list[list[str]] = []
    for q in queries[:WARMUP]:  # untimed: caches and lazy structures warm, as in a long run
        memory.context("d", q, k=K, similarity_floor=FLOOR, max_per_group=1, max_guidelines=6,
                       guideline_budget_tokens=400, exclude_items=set())  # fmt: skip
    for n, q in enumerate(queries):
        t = time.perf_counter()
        ctx = memory.context(
            "d",
            q,
            k=K,
            similarity_floor=FLOOR,
            max_per_group=1,
            max_guidelines=6,
            guideline_budget_tokens=400,
            exclude_items={f"item{n:07d}"},
        )
        lat.append((time.perf_counter() - t) * 1000)
        hits.append([e.id for e, _ in ctx.episodes])
    return lat, hits


def run_size(kind: str, n: int, gen: Topical | Isotropic, rng: np.random.Generator) -> dict:
    vectors = gen.draw(n)
    queries = gen.draw(QUERIES)
    memory = build(vectors, rng)
    dm = memory.dimension("d")
    t0 = time.perf_counter()
    memory.prepare_retrieval()  # the graph, when this size uses one
    build_s = time.perf_counter() - t0
    chosen = dm.index
    lat, got = timed(memory, queries)
    # The truth: the same memory, forced exact (the index object is swapped, not the data).
    dm._index = EpisodeIndex(vectors, dm.episodes, approximate=False)
    exact_lat, truth = timed(memory, queries)
    found = sum(len(set(a) & set(b)) for a, b in zip(got, truth, strict=True))
    wanted = sum(len(b) for b in truth)
    graph = chosen._graph() if chosen.approximate else None
    restore_s = None
    saved = chosen.saved_graph()
    if saved is not None:  # what a process loading the saved memory pays instead of a build
        t0 = time.perf_counter()
        ApproximateIndex.from_bytes(*saved)
        restore_s = round(time.perf_counter() - t0, 3)
    row = {
        "vectors": kind,
        "episodes": n,
        "dim": DIM,
        "queries": QUERIES,
        "index": "hnsw" if chosen.approximate else "exact",
        "index_build_s": round(build_s, 2),
        "index_mb": round(graph.memory_bytes / 1e6, 1) if graph is not None else 0.0,
        "saved_graph_mb": round(len(saved[0]) / 1e6, 1) if saved is not None else 0.0,
        "search_beam": graph.beam if graph is not None else None,
        "tuned_recall_at_10": graph.tuned_recall if graph is not None else None,
        "graph_restore_s": restore_s,
        "median_ms": round(float(np.median(lat)), 4),
        "p95_ms": round(float(np.percentile(lat, 95)), 4),
        "exact_median_ms": round(float(np.median(exact_lat)), 4),
        "exact_p95_ms": round(float(np.percentile(exact_lat, 95)), 4),
        f"recall_at_{K}": round(found / wanted, 4) if wanted else None,
        "mean_hits": wanted / QUERIES,
    }
    goal = GOALS.get(n)
    if goal is not None:
        row["goal_ms"] = goal
        row["goal_met"] = bool(row["median_ms"] < goal and (found / max(wanted, 1)) >= RECALL_GOAL)
    return row


def main() -> None:
    load_before = os.getloadavg()
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    ap.add_argument("--vectors", default="topical,isotropic")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    print(
        f"{'vectors':>9} {'episodes':>9} {'index':>6} {'build s':>8} {'median ms':>10} "
        f"{'p95 ms':>8} {'exact med':>10} {'recall@3':>9}"
    )
    for kind in args.vectors.split(","):
        rng = np.random.default_rng(SEED)
        gen: Topical | Isotropic = Topical(rng) if kind == "topical" else Isotropic(rng)
        for n in sizes:
            row = run_size(kind, n, gen, rng)
            gc.collect()
            print(
                f"{kind:>9} {n:>9} {row['index']:>6} {row['index_build_s']:>8.1f} "
                f"{row['median_ms']:>10.3f} {row['p95_ms']:>8.3f} {row['exact_median_ms']:>10.3f}"
                f" {row[f'recall_at_{K}']!s:>9}"
            )
            results.append(row)
    path = write_result(
        "retrieval",
        {
            "k": K,
            "similarity_floor": FLOOR,
            "approximate_from": APPROXIMATE_FROM,
            "goals": "median < 2 ms at 100k and < 10 ms at 1M per query, recall@3 >= 0.99 "
            "(topical vectors)",
            "peak_rss_mb": round(peak_rss_mb(), 1),
            # A shared machine's other work inflates latencies (p95 most): say how busy it was.
            "load_average_1min": {
                "start": round(load_before[0], 2),
                "end": round(os.getloadavg()[0], 2),
            },
            "results": results,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
