"""Reliability measured from outside: injected faults, kill -9, bad input, leaks, injection.

Everything runs the real command (``python -m judgealign``, its own process) against an
OpenAI-compatible server on 127.0.0.1 (``judgealign.testing.server``) that answers like a
model (scores from the request's scale, guidelines from the labels) and injects faults:

- faults: ``score`` and ``evaluate`` at 20% and 60% injected faults (500 echoing the API key,
  429 with Retry-After, no answer before the timeout, a body cut off, an HTML page, a score
  off the scale, no score), then resumed with ``--retry-failed`` until complete: judgements
  expected / produced / failed with a reason / lost per round, faults injected, Retry-After
  waits kept, final scores against an uninterrupted fault-free run;
- kills: ``score``, ``align`` and ``evaluate`` SIGKILLed at several points, then resumed:
  lost, requests answered before the kill and asked again (goal: at most --concurrency),
  the result against an uninterrupted run;
- bad input: the 75-case corpus of ``judgealign.testing.bad_inputs`` as real processes:
  exit code 2 with one ``error:`` line and no traceback, no stored file changed;
- everywhere: stored JSON/JSONL files that do not read back, the API key in any written file
  or output (grep), judge prompts whose item block the hostile notebook closed early.

    python bench/reliability.py                  # all of it, about 10 minutes on 2 cores
    python bench/reliability.py --parts faults,kills --notebooks 8
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from judgealign.testing import bad_inputs
from judgealign.testing.reliability import (
    CliRun,
    align_figures,
    chat,
    command,
    count_chat,
    damaged_files,
    evaluate_records,
    expected_keys,
    injection_breaks,
    is_judge_request,
    new_secret,
    repeated,
    repeated_texts,
    request_key,
    run_cli,
    score_records,
    secret_hits,
    served,
    tally,
    write_workspace,
)
from judgealign.testing.server import (
    Faults,
    HttpError,
    OpenAICompatServer,
    RecordedRequest,
    model_answer,
)

CONCURRENCY = 4
TIMEOUT = 2.0  # the client's per-attempt timeout (?timeout=); a stalled answer takes 3 s
RETRY_AFTER = 0.3
MAX_ROUNDS = 6


class Session:
    """One workspace, one API key, every process's output and every server's requests."""

    def __init__(self, root: Path, n_notebooks: int) -> None:
        self.root = root
        self.ws = write_workspace(root / "inputs", n_notebooks)
        self.secret = new_secret()
        self.runs: list[CliRun] = []
        self.requests: list[RecordedRequest] = []

    def run(self, argv: list[str], **kw: Any) -> CliRun:
        done = run_cli(argv, secret=self.secret, cwd=self.root, **kw)
        self.runs.append(done)
        return done

    def keep(self, server: OpenAICompatServer) -> None:
        self.requests.extend(server.requests)


def _records(kind: str, out: Path) -> list[dict[str, Any]]:
    return score_records(out) if kind == "score" else evaluate_records(out)


def _scores(kind: str, out: Path) -> dict[tuple[str, ...], float | None]:
    return {tuple(r["key"]): r["score"] for r in _records(kind, out)}


def _report(out: Path) -> dict[str, Any]:
    path = out / "report.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _reflection_gaps(out: Path) -> int:
    """Folds x dimensions whose report says reflection failed on some labels."""
    return sum("reflection failed" in n for n in _report(out).get("notes", []))


def _scoring_tokens(out: Path) -> int | None:
    """Prompt tokens of every judgement, answered now or from the cache (what the whole
    experiment cost, whichever process paid)."""
    usage = _report(out).get("usage_scoring")
    return None if usage is None else usage["prompt_tokens"] + usage["cached_prompt_tokens"]


def _torn(path: Path) -> bool:
    """Whether a JSONL file ends in an unfinished record (a write the kill cut)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        return fh.read(1) != b"\n"


def _out(folder: Path, kind: str) -> Path:
    return folder / {"score": "judgements.jsonl", "align": "judge.json", "evaluate": "run"}[kind]


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


def reference(s: Session, kind: str) -> dict[str, Any]:
    """An uninterrupted, fault-free run: what every other run must end up equal to."""
    folder = s.root / f"reference-{kind}"
    with OpenAICompatServer(handler=model_answer, delay=0.02) as srv:
        out = _out(folder, kind)
        done = s.run(command(kind, s.ws, srv.base_url, out, folder / "cache", timeout=TIMEOUT))
        s.keep(srv)
        requests = list(srv.requests)
    if done.code != 0:
        raise RuntimeError(f"reference {kind} failed:\n{done.output}")
    result: dict[str, Any] = {
        "seconds": round(done.seconds, 1),
        "chat_requests": len(chat(requests)),
        "judge_requests": sum(1 for r in chat(requests) if is_judge_request(r)),
        "embedding_requests": sum(1 for r in requests if r.path.endswith("/embeddings")),
        "duplicate_requests": len(chat(requests))
        - len({request_key(r.path, r.body) for r in chat(requests)}),
    }
    if kind == "align":
        result["memory"] = align_figures(out, s.ws)
    else:
        result["scores"] = _scores(kind, out)
    if kind == "evaluate":
        result["scoring_prompt_tokens"] = _scoring_tokens(out)
    return result


def retry_after_kept(requests: list[RecordedRequest], wait: float) -> tuple[int, int]:
    """(429s answered, of which asked again sooner than Retry-After said)."""
    times: dict[str, list[float]] = {}
    for r in chat(requests):
        times.setdefault(request_key(r.path, r.body), []).append(r.at)
    total = early = 0
    for r in chat(requests):
        if r.fault != "http_429":
            continue
        later = [t for t in times[request_key(r.path, r.body)] if t > r.at]
        if later:
            total += 1
            early += min(later) - r.at < wait - 0.02
    return total, early


def fault_run(s: Session, kind: str, rate: float, ref: dict[str, Any]) -> dict[str, Any]:
    folder = s.root / f"faults-{kind}-{int(rate * 100)}"
    out = _out(folder, kind)
    expected = expected_keys(kind, s.ws)
    faults = Faults(rate=rate, seed=7, retry_after=RETRY_AFTER, stall=TIMEOUT + 1)
    rounds = []
    with OpenAICompatServer(handler=model_answer, faults=faults, delay=0.02) as srv:
        argv = command(kind, s.ws, srv.base_url, out, folder / "cache", timeout=TIMEOUT)
        for n in range(MAX_ROUNDS):
            start = served(srv)
            done = s.run(argv + (["--retry-failed"] if n else []))
            figures = tally(_records(kind, out), expected).as_dict()
            # A run stopped by a provider error (an embedding batch that failed every retry,
            # say) never reached some judgements: not lost, asked by the next run.
            finished = ("judgements -> " if kind == "score" else "report: ") in done.output
            if not finished:
                figures["not_reached"] = figures.pop("lost")
            rounds.append(
                {
                    "exit_code": done.code,
                    "finished": finished,
                    "seconds": round(done.seconds, 1),
                    "requests": count_chat(srv.requests, start),
                    **figures,
                    "said": _last_line(done.output) if done.code else "",
                }
            )
            if done.code == 0 and figures["produced"] == figures["expected"]:
                break
        s.keep(srv)
        injected = dict(srv.injected)
        answered_429, early = retry_after_kept(list(srv.requests), RETRY_AFTER)
    final = _scores(kind, out)
    same = sum(1 for k, v in ref["scores"].items() if final.get(k) == v)
    return {
        "command": kind,
        "rate": rate,
        "first_run": rounds[0],
        "rounds": rounds,
        "rounds_to_complete": len(rounds) if rounds[-1]["produced"] == len(expected) else None,
        "final": {**tally(_records(kind, out), expected).as_dict(), "same_as_reference": same},
        # Reflection batches that failed and were never distilled again (item 2: frozen gaps).
        "reflection_gaps_left": _reflection_gaps(out) if kind == "evaluate" else None,
        "faults_injected": injected,
        "retry_after": {"answered_429": answered_429, "asked_again_too_soon": early},
        "damaged_files": damaged_files(folder),
    }


def dead_server_run(s: Session) -> dict[str, Any]:
    """Every call refused (401): the run must say so and exit non-zero (item 1)."""
    folder = s.root / "dead-server"
    out = _out(folder, "score")
    with OpenAICompatServer(handler=lambda body: HttpError(401, "invalid api key")) as srv:
        done = s.run(command("score", s.ws, srv.base_url, out, folder / "cache"))
        s.keep(srv)
    t = tally(_records("score", out), expected_keys("score", s.ws))
    return {"exit_code": done.code, **t.as_dict(), "said": _last_line(done.output)}


# -- kills ---------------------------------------------------------------------------------


def _kill_points(kind: str, ref: dict[str, Any]) -> list[tuple[str, Callable[..., bool]]]:
    judges, chats = ref["judge_requests"], ref["chat_requests"]

    def judged(n: int) -> Callable[[list[RecordedRequest]], bool]:
        return lambda reqs: sum(1 for r in chat(reqs) if is_judge_request(r)) >= n

    def chatted(n: int) -> Callable[[list[RecordedRequest]], bool]:
        return lambda reqs: len(chat(reqs)) >= n

    def embedded(reqs: list[RecordedRequest]) -> bool:
        return any(r.path.endswith("/embeddings") for r in reqs)

    if kind == "score":
        return [(f"after {n} of {judges} judgements asked", judged(n))
                for n in (max(1, judges // 4), judges // 2, judges * 9 // 10)]  # fmt: skip
    if kind == "align":
        return [
            ("at the first embedding request", embedded),
            ("at the first reflection request", chatted(1)),
            (f"at reflection request {chats} of {chats}", chatted(chats)),
        ]
    return [
        ("at the first reflection request", lambda reqs: any(
            not is_judge_request(r) for r in chat(reqs))),
        (f"after {judges // 3} of {judges} judgements asked", judged(judges // 3)),
        (f"after {judges * 3 // 4} of {judges} judgements asked", judged(judges * 3 // 4)),
    ]  # fmt: skip


def kill_run(
    s: Session, kind: str, n: int, point: str, when: Callable[..., bool], ref: dict[str, Any]
) -> dict[str, Any]:
    folder = s.root / f"kill-{kind}-{n}"
    out = _out(folder, kind)
    with OpenAICompatServer(handler=model_answer, delay=0.05) as srv:
        argv = command(kind, s.ws, srv.base_url, out, folder / "cache", timeout=TIMEOUT,
                       concurrency=CONCURRENCY)  # fmt: skip
        killed = s.run(argv, kill_when=lambda: when(list(srv.requests)))
        mark = served(srv)
        damaged_at_kill = damaged_files(folder)
        stored = len(_records(kind, out)) if kind != "align" else int(out.exists())
        store = out if kind == "score" else out / "judgements.jsonl"
        torn = _torn(store)
        resumed = s.run(argv)
        s.keep(srv)
        before, after = srv.requests[:mark], srv.requests[mark:]
        figures: dict[str, Any] = {
            "command": kind,
            "point": point,
            "killed": killed.killed,
            "requests_before_kill": len(chat(before)),
            "stored_at_kill": stored,
            "torn_record_at_kill": torn,
            "resume_exit_code": resumed.code,
            "requests_after": len(chat(after)),
            "repeated_calls": repeated(before, after),
            "repeated_embedding_texts": repeated_texts(before, after),
            "damaged_files": sorted(set(damaged_at_kill) | set(damaged_files(folder))),
        }
    if kind == "align":
        memory = align_figures(out, s.ws)
        figures.update(
            expected=memory["expected"],
            produced=memory["produced"],
            lost=memory["lost"],
            failed_batches=memory["failed_batches"],
            same_as_reference=memory["guidelines"] == ref["memory"]["guidelines"],
        )
    else:
        expected = expected_keys(kind, s.ws)
        t = tally(_records(kind, out), expected)
        final = _scores(kind, out)
        figures.update(
            expected=t.expected,
            produced=t.produced,
            lost=t.lost,
            same_as_reference=all(final.get(k) == v for k, v in ref["scores"].items()),
        )
        if kind == "evaluate":  # item 9: a resumed run's cost counts every process
            figures["scoring_tokens_same"] = _scoring_tokens(out) == ref["scoring_prompt_tokens"]
    return figures


# -- bad input --------------------------------------------------------------------------------


def bad_input_runs(s: Session) -> dict[str, Any]:
    root = s.root / "bad-inputs"
    bad_inputs.prepare(root)
    cases = bad_inputs.corpus(root)
    before = bad_inputs.fingerprint(root)
    failures: dict[str, list[str]] = {}
    damaged: list[str] = []
    clean = tracebacks = 0
    for case in cases:
        outcome = bad_inputs.run_subprocess(case.argv, cwd=root)
        problems = outcome.problems(case)
        after = bad_inputs.fingerprint(root)
        if after != before:
            changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            damaged.append(f"{case.name}: {', '.join(changed)}")
            before = after
        clean += not problems
        tracebacks += "Traceback" in outcome.output
        if problems:
            failures[case.name] = [*problems, outcome.output.strip()[:300]]
    return {
        "cases": len(cases),
        "one_line_exit_2": clean,
        "tracebacks": tracebacks,
        "stored_files_damaged": len(damaged),
        "damaged": damaged,
        "failures": failures,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="faults,kills,bad-inputs")
    ap.add_argument("--rates", default="0.2,0.6")
    ap.add_argument("--notebooks", type=int, default=12, help="demo notebooks (+1 hostile)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="judgealign-reliability-") as tmp:
        s = Session(Path(tmp), args.notebooks)
        payload: dict[str, Any] = {
            "notebooks": s.ws.n_items,
            "labels": s.ws.n_labels,
            "concurrency": CONCURRENCY,
        }
        refs = {k: reference(s, k) for k in ("score", "align", "evaluate")}
        payload["reference"] = {
            k: {f: v for f, v in r.items() if f not in ("scores", "memory")}
            for k, r in refs.items()
        }
        if "faults" in parts:
            payload["faults"] = [
                fault_run(s, kind, float(rate), refs[kind])
                for rate in args.rates.split(",")
                for kind in ("score", "evaluate")
            ]
            for f in payload["faults"]:
                first, fin = f["first_run"], f["final"]
                gap = (
                    f"{first['lost']} lost"
                    if first["finished"]
                    else f"{first['not_reached']} not reached (stopped: {first['said'][:60]})"
                )
                print(
                    f"faults {f['rate']:.0%} {f['command']}: first run {first['produced']}"
                    f"/{first['expected']} produced, {first['failed_with_reason']} failed with"
                    f" a reason, {gap}, exit {first['exit_code']}; complete after "
                    f"{f['rounds_to_complete']} runs, {fin['lost']} lost, "
                    f"{fin['same_as_reference']}/{fin['expected']} as the fault-free run; "
                    f"429s asked again too soon: {f['retry_after']['asked_again_too_soon']}"
                )
        if "faults" in parts:
            payload["dead_server"] = dead = dead_server_run(s)
            print(f"every call refused (401): exit {dead['exit_code']}, said: {dead['said']}")
        if "kills" in parts:
            payload["kills"] = [
                kill_run(s, kind, n, point, when, refs[kind])
                for kind in ("score", "align", "evaluate")
                for n, (point, when) in enumerate(_kill_points(kind, refs[kind]))
            ]
            for k in payload["kills"]:
                print(f"kill {k['command']} {k['point']}: killed={k['killed']}, resumed exit "
                      f"{k['resume_exit_code']}, {k['lost']} lost, {k['repeated_calls']} calls "
                      f"repeated, same as uninterrupted: {k['same_as_reference']}")  # fmt: skip
        if "bad-inputs" in parts:
            payload["bad_inputs"] = bad_input_runs(s)
            b = payload["bad_inputs"]
            print(f"bad inputs: {b['one_line_exit_2']}/{b['cases']} one-line errors with exit 2, "
                  f"{b['tracebacks']} tracebacks, {b['stored_files_damaged']} stored files "
                  "damaged")  # fmt: skip
        carried, broken = injection_breaks(s.requests)
        hits = secret_hits(s.root, s.secret, [r.output for r in s.runs])
        kills = payload.get("kills", [])
        payload["summary"] = {
            "judgements_lost": sum(f["final"]["lost"] for f in payload.get("faults", []))
            + sum(k["lost"] for k in kills),
            "stored_files_damaged": sum(len(f["damaged_files"]) for f in payload.get("faults", []))
            + sum(len(k["damaged_files"]) for k in kills)
            + payload.get("bad_inputs", {}).get("stored_files_damaged", 0),
            "max_repeated_calls_per_kill": max((k["repeated_calls"] for k in kills), default=0),
            "bad_inputs_one_line_exit_2": (
                f"{payload['bad_inputs']['one_line_exit_2']}/{payload['bad_inputs']['cases']}"
                if "bad_inputs" in payload
                else None
            ),
            "secrets_found": len(hits),
            "secret_hits": hits,
            "hostile_prompts": carried,
            "hostile_prompts_broken": broken,
            "processes": len(s.runs),
            "seconds": round(time.monotonic() - started),
        }
    print(" ".join(f"{k}={v}" for k, v in payload["summary"].items() if k != "secret_hits"))
    print(f"wrote {write_result('reliability', payload)}")


if __name__ == "__main__":
    main()
