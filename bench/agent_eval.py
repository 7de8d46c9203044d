"""Agent evaluation cost: wall time, model calls and tokens per test case, for generation (a
chat-model agent writing the notebook) and scoring (an aligned judge on every dimension).

Two modes, both running the whole product path (``judgealign.run_agent``: suite, agent,
run folder, judges, scoreboard, gaps, report):

- ``--mode server``: agent and judge talk to an OpenAI-compatible server in its own process
  that answers every request after ``--delay`` seconds (a notebook for the agent, a judgement
  for the judge), at concurrency 1, 8 and 32. The ideal wall time at concurrency c is
  ``delay * (1 + max(N, N*D) / c)`` for N notebooks and D dimensions: the judge pool keeps c
  requests in flight from the moment the first notebook exists. Efficiency = ideal / measured.
- ``--mode local``: the embedded local models (agent ``local:fast`` by default, the judge
  file's model), on the first ``--cases`` cases of the example suite.

The aligned judge is fitted on the demo labels with the fake reflection model and embedder
(so nothing but the timed calls reaches a model), then scores with the mode's model; or give
``--judge FILE``.

    python bench/agent_eval.py --mode server --delay 0.5 --levels 1,8,32
    OMP_WAIT_POLICY=PASSIVE nice python bench/agent_eval.py --mode local --cases 2
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
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import judgealign as ja
from _common import peak_rss_mb, write_result
from judgealign.agent.example_set import EXAMPLES_DIR
from judgealign.agent.suite import load_suite
from judgealign.providers import resolve_llm

DIMS = ("data_imputation", "model_training")
NOTEBOOK_ANSWER = (
    "# Churn model\nLoad the data and look at it.\n```python\nimport pandas as pd\n"
    "df = pd.read_csv('data/customers.csv')\ndf.describe()\n```\n"
    "Split, then impute inside a pipeline.\n```python\n"
    "from sklearn.model_selection import train_test_split\n"
    "X_train, X_test, y_train, y_test = train_test_split(df.drop(columns='churn'), df.churn)\n"
    "```\n"
)
JUDGEMENT_ANSWER = '{"rationale": "The imputer is fitted on the training split only.", "score": 2}'


def _reply(body: dict[str, Any]) -> Any:
    from judgealign.testing.server import Answer

    prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
    text = JUDGEMENT_ANSWER if body.get("response_format") else NOTEBOOK_ANSWER
    return Answer(text=text, prompt_tokens=prompt, completion_tokens=len(text) // 4)


def _serve(delay: float, conn: Connection) -> None:
    from judgealign.testing.server import OpenAICompatServer

    with OpenAICompatServer(delay=delay, handler=_reply) as srv:
        conn.send(srv.base_url)
        conn.recv()  # block until the parent says stop


def _suite(folder: Path, n: int) -> Path:
    """``n`` one-notebook cases cycling through the example suite's prompts and data."""
    example = load_suite("example")
    shutil.copytree(EXAMPLES_DIR / "data", folder / "data", dirs_exist_ok=True)
    cases = []
    for i in range(n):
        c = example.cases[i % len(example.cases)]
        body = c.model_dump(mode="json", exclude_none=True)
        cases.append({**body, "id": f"{c.id}-{i}", "notebooks": 1})
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump({"name": "bench", "cases": cases}), encoding="utf-8")
    return path


def _judge_file(folder: Path) -> Path:
    rubric = ja.load_rubric("ml-notebook").subset(list(DIMS))
    items, labels = ja.load_demo(dimensions=list(DIMS))
    judge = ja.Judge(rubric, model="fake:mimic", embedder="fake")
    judge.fit(labels, items)
    return ja.save_judge(judge, folder / "judge.json")


def _per_case(board: ja.Scoreboard, seconds: float) -> dict[str, Any]:
    n = max(1, board.cases_total)
    gen, sco = board.usage_generation, board.usage_scoring
    return {
        "cases": board.cases_total,
        "notebooks": board.notebooks_total,
        "failed_notebooks": board.notebooks_failed,
        "judgements": sum(len(nb.judgements) for nb in board.notebooks),
        "seconds": round(seconds, 2),
        "per_case": {
            "seconds": round(seconds / n, 3),
            "generation_calls": round((gen.calls + gen.cached_calls) / n, 2),
            "generation_prompt_tokens": round(gen.all_prompt_tokens / n, 1),
            "generation_completion_tokens": round(
                (gen.completion_tokens + gen.cached_completion_tokens) / n, 1
            ),
            "scoring_calls": round((sco.calls + sco.cached_calls) / n, 2),
            "scoring_prompt_tokens": round(sco.all_prompt_tokens / n, 1),
            "scoring_completion_tokens": round(
                (sco.completion_tokens + sco.cached_completion_tokens) / n, 1
            ),
        },
    }


async def _server_level(base_url: str, folder: Path, judge_file: Path, c: int, n: int) -> Any:
    suite = _suite(folder / f"suite-{c}", n)
    agent_llm = resolve_llm(f"openai:bench-agent?base_url={base_url}", concurrency=c, retries=0)
    judge_llm = resolve_llm(f"openai:bench-judge?base_url={base_url}", concurrency=c, retries=0)
    judge = ja.load_judge(judge_file, model=judge_llm)
    t0 = time.perf_counter()
    board = await ja.arun_agent(
        suite,
        ja.ChatAgent(agent_llm),
        judge,
        folder / f"run-{c}",
        concurrency=c,
        version=f"c{c}",
    )
    return board, time.perf_counter() - t0


def server_mode(args: argparse.Namespace) -> None:
    parent, child = mp.Pipe()
    proc = mp.Process(target=_serve, args=(args.delay, child), daemon=True)
    proc.start()
    base_url = parent.recv()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            judge_file = _judge_file(folder)
            for c in (int(x) for x in args.levels.split(",")):
                n = max(16, 4 * c)
                cpu0 = time.process_time()
                board, seconds = asyncio.run(_server_level(base_url, folder, judge_file, c, n))
                cpu = time.process_time() - cpu0
                d = len(DIMS)
                ideal = args.delay * (1 + max(n, n * d) / c)
                row = {
                    "concurrency": c,
                    **_per_case(board, seconds),
                    "ideal_seconds": round(ideal, 2),
                    "efficiency": round(ideal / seconds, 3),
                    # The client's own CPU (rendering, retrieval, HTTP, the run folder); on a
                    # shared machine it decides how far the wall time is from the ideal.
                    "client_cpu_seconds": round(cpu, 2),
                    "load_average_1min": round(os.getloadavg()[0], 2),
                }
                rows.append(row)
                print(
                    f"concurrency {c:>3}: {n} cases in {seconds:6.2f} s (ideal {ideal:6.2f} s, "
                    f"{100 * ideal / seconds:5.1f}%), {row['per_case']['generation_calls']} + "
                    f"{row['per_case']['scoring_calls']} calls per case, "
                    f"{row['failed_notebooks']} failed; client CPU {cpu:.1f} s, load "
                    f"{row['load_average_1min']}"
                )
    finally:
        parent.send("stop")
        proc.join(timeout=5)
    path = write_result(
        "agent-eval-server",
        {
            "mode": "server",
            "delay_seconds": args.delay,
            "dimensions": list(DIMS),
            "levels": rows,
            "target": "efficiency at concurrency 32 >= 0.80",
            "target_met": next(
                (r["efficiency"] >= 0.80 for r in rows if r["concurrency"] == 32), None
            ),
        },
    )
    print(f"wrote {path}")


def local_mode(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        judge_file = Path(args.judge) if args.judge else _judge_file(folder)
        judge = ja.load_judge(
            judge_file,
            model=resolve_llm(args.judge_model, concurrency=1),
            max_tokens=args.judge_max_tokens,
        )
        suite = load_suite("example").select(limit=args.cases)
        agent = ja.ChatAgent(args.agent_model, max_tokens=args.agent_max_tokens, concurrency=1)
        t0 = time.perf_counter()
        board = ja.run_agent(
            suite, agent, judge, folder / "run", dimensions=list(DIMS), concurrency=1
        )
        seconds = time.perf_counter() - t0
        row = _per_case(board, seconds)
        gen = board.usage_generation
        print(
            f"{row['cases']} cases in {seconds:.0f} s: "
            f"per case {row['per_case']['seconds']:.0f} s, "
            f"generation {row['per_case']['generation_completion_tokens']:.0f} tokens "
            f"({gen.seconds:.0f} s model time), scoring {row['per_case']['scoring_calls']} calls; "
            f"{row['failed_notebooks']} failed notebooks"
        )
        failures = [f"{nb.id}: {nb.failure}: {nb.reason}" for nb in board.notebooks if nb.failure]
        path = write_result(
            f"agent-eval-local-{args.agent_model.split(':')[-1]}",
            {
                "mode": "local",
                "agent_model": args.agent_model,
                "agent_max_tokens": args.agent_max_tokens,
                "judge_model": args.judge_model,
                "judge_max_tokens": args.judge_max_tokens,
                "judge_file": str(args.judge or "fitted with fake reflection on the demo labels"),
                "dimensions": list(DIMS),
                **row,
                "generation_model_seconds": round(gen.seconds, 1),
                "scoring_model_seconds": round(board.usage_scoring.seconds, 1),
                "failures": failures,
                "scores": {
                    d.dimension: None if d.mean is None else round(d.mean.estimate, 2)
                    for d in board.dims
                },
                "peak_rss_mb": round(peak_rss_mb(), 1),
            },
        )
        print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--mode", choices=("server", "local"), default="server")
    ap.add_argument("--delay", type=float, default=0.5, help="server mode: seconds per answer")
    ap.add_argument("--levels", default="1,8,32", help="server mode: concurrency levels")
    ap.add_argument("--cases", type=int, default=2, help="local mode: example cases to run")
    ap.add_argument("--agent-model", default="local:fast")
    ap.add_argument("--agent-max-tokens", type=int, default=1200)
    ap.add_argument("--judge", help="aligned judge file (default: fitted on the demo labels)")
    ap.add_argument("--judge-model", default="local:default")
    ap.add_argument("--judge-max-tokens", type=int, default=150)
    args = ap.parse_args()
    if args.mode == "server":
        server_mode(args)
    else:
        local_mode(args)


if __name__ == "__main__":
    main()
