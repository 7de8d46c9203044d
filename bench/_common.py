"""Shared helpers for the benchmarks: result files and machine facts."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {
        "benchmark": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **payload,
    }
    path.write_text(json.dumps(body, indent=1, default=str) + "\n", encoding="utf-8")
    return path


class LineProgress:
    """Progress as plain log lines (a benchmark runs in the background with its output in a
    file, where a redrawn bar is unreadable): status changes, and every ``every`` judgements
    the count, elapsed time and a naive estimate of the time left."""

    def __init__(self, every: int = 10) -> None:
        self.every = every
        self.total = 0
        self.done = 0
        self.t0 = time.perf_counter()
        self.phase = ""

    def _say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done = phase, total, 0
        self.t0 = time.perf_counter()
        self._say(f"{phase}: {total} judgements")

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.done % self.every and self.done != self.total:
            return
        spent = time.perf_counter() - self.t0
        left = spent / self.done * (self.total - self.done) if self.done else 0.0
        self._say(f"{self.phase} {self.done}/{self.total} ({spent:.0f} s, ~{left:.0f} s left)")

    def status(self, text: str) -> None:
        self._say(text)
