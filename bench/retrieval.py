"""Episodic retrieval latency at 1k, 10k and 100k episodes (384-d), through AlignmentMemory.

Run: ``python bench/retrieval.py`` -> prints a table, writes ``bench/results/retrieval.json``.
On a busy 2-core machine multi-threaded BLAS contends; ``OPENBLAS_NUM_THREADS=1`` gave
the steadier (and faster) figures. Vectors are clustered (items about shared topics) so
the similarity floor and the diversity filter do real work, as on real embeddings.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from judgealign.memory.records import Episode, Guideline
from judgealign.memory.store import AlignmentMemory, DimensionMemory

DIM = 384
SIZES = (1_000, 10_000, 100_000)
QUERIES = 200
SEED = 0
OUT = Path(__file__).resolve().parent / "results" / "retrieval.json"


def clustered(rng: np.random.Generator, n: int, centers: np.ndarray) -> np.ndarray:
    pick = rng.integers(0, len(centers), size=n)
    vecs = centers[pick] + 0.08 * rng.standard_normal((n, DIM)).astype(np.float32)
    out: np.ndarray = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    return out


def build(n: int, rng: np.random.Generator, centers: np.ndarray) -> AlignmentMemory:
    vectors = clustered(rng, n, centers)
    judge = rng.integers(1, 4, size=n)
    score = rng.integers(1, 4, size=n)
    episodes = tuple(
        Episode(
            id=f"item{i:06d}::d::expert",
            item=f"item{i:06d}",
            group=f"g{i // 4}",
            dimension="d",
            rater="expert",
            text="...",
            score=float(score[i]),
            rationale="...",
            judge_score=float(judge[i]),
        )
        for i in range(n)
    )
    guidelines = tuple(
        Guideline.create(
            "d", f"Rule {g}: condition -> score {g % 3 + 1}.", (f"item{g:06d}::d::expert",)
        )
        for g in range(12)
    )
    dm = DimensionMemory(
        guidelines=guidelines,
        guideline_scores=tuple(float(g % 3 + 1) for g in range(12)),
        guideline_vectors=clustered(rng, 12, centers),
        episodes=episodes,
        episode_vectors=vectors,
    )
    return AlignmentMemory(embedder="bench", dim=DIM, dimensions={"d": dm})


def main() -> None:
    rng = np.random.default_rng(SEED)
    centers = rng.standard_normal((64, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    results = []
    print(f"{'episodes':>9} {'index build ms':>15} {'median ms':>10} {'p95 ms':>8}")
    for n in SIZES:
        memory = build(n, rng, centers)
        t0 = time.perf_counter()
        _ = memory.dimension("d").index  # built once per memory, then reused
        build_ms = (time.perf_counter() - t0) * 1000
        queries = clustered(rng, QUERIES, centers)
        lat = []
        hits = 0
        for q in queries:
            t = time.perf_counter()
            ctx = memory.context(
                "d",
                q,
                k=2,
                similarity_floor=0.2,
                max_per_group=1,
                max_guidelines=6,
                guideline_budget_tokens=400,
                exclude_items={"item000000"},
            )
            lat.append((time.perf_counter() - t) * 1000)
            hits += len(ctx.episodes)
        med, p95 = float(np.median(lat)), float(np.percentile(lat, 95))
        print(f"{n:>9} {build_ms:>15.1f} {med:>10.3f} {p95:>8.3f}")
        results.append(
            {
                "episodes": n,
                "dim": DIM,
                "queries": QUERIES,
                "index_build_ms": round(build_ms, 2),
                "median_ms": round(med, 4),
                "p95_ms": round(p95, 4),
                "mean_hits": hits / QUERIES,
            }
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(
        json.dumps(
            {
                "benchmark": "retrieval",
                "k": 2,
                "machine": platform.machine(),
                "python": platform.python_version(),
                "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                "results": results,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
