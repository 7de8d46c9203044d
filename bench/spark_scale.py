"""Judgements per second on Spark against a loopback server with a fixed latency.

For 1, 2 and 4 local executors (task slots, each a Python worker with its own provider
stack) x per-worker concurrency, ``score_dataframe`` scores text items with a zero-shot
judge whose model is an OpenAI-compatible server (own process) that answers every request
after ``--delay`` seconds. The ideal is executors x concurrency / delay; beside it, the
single-process path (``Judge.apredict``) at the same total concurrency. Wall time is the
whole ``score_dataframe`` call (the id checks, the resume lookup, the scoring job and its
Parquet write), after one small warm-up run per session (the JVM and the Python workers
start once; their start-up is reported apart).

    python bench/spark_scale.py [--delay 0.5] [--executors 1,2,4] [--concurrency 4,16]

On the 2-core machine the benchmarks run on, four executors plus the server and the JVM
share two cores: the figures show where local mode stops scaling, not a cluster's limit.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from judgealign.data.item import Item
from judgealign.judge.judge import Judge
from judgealign.providers import resolve_llm
from judgealign.rubric import load_rubric

ITEMS_PER_SLOT = 40  # items per call slot in flight: 40 round trips at the ideal rate


def _serve(delay: float, conn: Connection) -> None:
    from judgealign.testing.server import OpenAICompatServer

    with OpenAICompatServer(delay=delay) as srv:
        conn.send(srv.base_url)
        conn.recv()  # block until the parent says stop


def _items(n: int, tag: str) -> list[Item]:
    # A tag per run: the server's answers never repeat a prompt across runs.
    return [
        Item(
            id=f"{tag}-{i}",
            output=f"Summary {tag} {i}. It is short.",
            inputs={"article": "An article. " * 20},
        )
        for i in range(n)
    ]


def _single(model: str, concurrency: int, n: int) -> float:
    rubric = load_rubric("summeval").subset(["coherence"])
    judge = Judge(rubric, model=resolve_llm(model, concurrency=concurrency, retries=0))
    items = _items(n, f"single-{concurrency}")
    t0 = time.perf_counter()
    out = asyncio.run(judge.apredict(items))
    elapsed = time.perf_counter() - t0
    assert all(j.ok for j in out), [j.error for j in out if not j.ok][:3]
    return elapsed


def _spark_run(spark: object, model: str, concurrency: int, n: int, tag: str, out: Path) -> float:
    from judgealign.integrations.spark import score_dataframe

    rubric = load_rubric("summeval").subset(["coherence"])
    judge = Judge(rubric, model=model)
    rows = [(it.id, it.output, it.inputs) for it in _items(n, tag)]
    frame = spark.createDataFrame(rows, "id string, output string, inputs map<string,string>")  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    result = score_dataframe(judge, frame, out=out, concurrency=concurrency)
    elapsed = time.perf_counter() - t0
    failed = result.where("error is not null").count()
    assert failed == 0, result.where("error is not null").select("error").first()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--delay", type=float, default=0.5)
    ap.add_argument("--executors", default="1,2,4")
    ap.add_argument("--concurrency", default="4,16")
    args = ap.parse_args()
    load_before = os.getloadavg()
    from judgealign.integrations.spark import local_session

    parent, child = mp.Pipe()
    proc = mp.Process(target=_serve, args=(args.delay, child), daemon=True)
    proc.start()
    base_url = parent.recv()
    model = f"openai:bench?base_url={base_url}"
    work = Path(tempfile.mkdtemp(prefix="spark-scale-"))
    rows = []
    try:
        for executors in (int(x) for x in args.executors.split(",")):
            t0 = time.perf_counter()
            spark = local_session(executors, app_name=f"spark-scale-{executors}")
            session_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            _spark_run(
                spark, model, 2, 2 * executors, f"warm{executors}", work / f"warm{executors}"
            )
            warmup_s = time.perf_counter() - t0
            for c in (int(x) for x in args.concurrency.split(",")):
                slots = executors * c
                n = ITEMS_PER_SLOT * slots
                ideal = slots / args.delay
                spark_s = _spark_run(
                    spark, model, c, n, f"e{executors}c{c}", work / f"e{executors}c{c}"
                )
                single_s = _single(model, slots, n)
                row = {
                    "executors": executors,
                    "concurrency": c,
                    "in_flight": slots,
                    "judgements": n,
                    "ideal_per_second": round(ideal, 2),
                    "spark_seconds": round(spark_s, 2),
                    "spark_per_second": round(n / spark_s, 2),
                    "spark_efficiency": round(n / spark_s / ideal, 3),
                    # Beyond the ideal time: the call's fixed Spark jobs and per-task costs.
                    "spark_overhead_seconds": round(spark_s - n / ideal, 2),
                    "single_process_seconds": round(single_s, 2),
                    "single_process_per_second": round(n / single_s, 2),
                    "single_process_efficiency": round(n / single_s / ideal, 3),
                    "session_start_seconds": round(session_s, 1),
                    "warmup_seconds": round(warmup_s, 1),
                }
                rows.append(row)
                print(
                    f"{executors} executors x {c:>2}: spark {row['spark_per_second']:7.2f}/s "
                    f"({100 * row['spark_efficiency']:5.1f}% of {ideal:6.1f}), one process "
                    f"{row['single_process_per_second']:7.2f}/s "
                    f"({100 * row['single_process_efficiency']:5.1f}%), {n} judgements"
                )
            spark.stop()
    finally:
        parent.send("stop")
        proc.join(timeout=5)
        shutil.rmtree(work, ignore_errors=True)
    path = write_result(
        "spark_scale",
        {
            "delay_seconds": args.delay,
            "spark_version": __import__("pyspark").__version__,
            "levels": rows,
            # A shared machine's other work slows every figure: say how busy it was.
            "load_average_1min": {
                "start": round(load_before[0], 2),
                "end": round(os.getloadavg()[0], 2),
            },
            "note": "local mode on this machine's cores; wall time is the whole score_dataframe "
            "call after a warm-up run per session",
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
