"""Judgements per second against a local OpenAI-compatible server with a fixed delay.

The server runs in its own process (as a real endpoint would), answering every request after
``--delay`` seconds. The ideal throughput at concurrency c is c / delay; the whole judge
stack (rendering, prompt, HTTP, parsing, accounting) runs for real.

    python bench/throughput.py [--delay 0.5] [--levels 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from judgealign.data.item import Item
from judgealign.judge.judge import Judge
from judgealign.providers import resolve_llm
from judgealign.rubric import load_rubric


def _serve(delay: float, conn: Connection) -> None:
    from judgealign.testing.server import OpenAICompatServer

    with OpenAICompatServer(delay=delay) as srv:
        conn.send(srv.base_url)
        conn.recv()  # block until the parent says stop


async def _run(base_url: str, concurrency: int, n: int) -> tuple[float, int]:
    rubric = load_rubric("summeval").subset(["coherence"])
    llm = resolve_llm(f"openai:bench?base_url={base_url}", concurrency=concurrency, retries=0)
    judge = Judge(rubric, model=llm)
    items = [
        Item(
            id=f"s{i}",
            output=f"Summary number {i}. It is short.",
            inputs={"article": "An article. " * 20},
        )
        for i in range(n)
    ]
    t0 = time.perf_counter()
    out = await judge.apredict(items)
    elapsed = time.perf_counter() - t0
    return elapsed, sum(j.ok for j in out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--delay", type=float, default=0.5)
    ap.add_argument("--levels", default="1,8,32")
    args = ap.parse_args()
    parent, child = mp.Pipe()
    proc = mp.Process(target=_serve, args=(args.delay, child), daemon=True)
    proc.start()
    base_url = parent.recv()
    rows = []
    try:
        for c in (int(x) for x in args.levels.split(",")):
            n = max(16, 4 * c)
            elapsed, ok = asyncio.run(_run(base_url, c, n))
            rate = n / elapsed
            ideal = c / args.delay
            rows.append(
                {
                    "concurrency": c,
                    "judgements": n,
                    "ok": ok,
                    "seconds": round(elapsed, 3),
                    "per_second": round(rate, 2),
                    "ideal_per_second": round(ideal, 2),
                    "efficiency": round(rate / ideal, 3),
                }
            )
            print(
                f"concurrency {c:>3}: {rate:7.2f} judgements/s  (ideal {ideal:6.2f}, "
                f"{100 * rate / ideal:5.1f}%), {ok}/{n} ok"
            )
    finally:
        parent.send("stop")
        proc.join(timeout=5)
    target = next((r for r in rows if r["concurrency"] == 32), None)
    path = write_result(
        "throughput",
        {
            "delay_seconds": args.delay,
            "levels": rows,
            "target": "efficiency at concurrency 32 >= 0.80",
            "target_met": None if target is None else target["efficiency"] >= 0.80,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
