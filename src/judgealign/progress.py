"""Progress of long runs: a live bar on a terminal, plain timestamped lines elsewhere.

CI logs, ``!judgealign`` in a Jupyter cell, ``nohup`` and a Python cell's stderr are not
terminals: a redrawn bar shows nothing there until the end (or garbage), so those get one
line per step instead. Both implement ``Progress``.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol, TextIO


class Progress(Protocol):
    """One bar of ``total`` units; ``status`` says what the run is doing between them."""

    def start(self, phase: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def status(self, text: str) -> None: ...


class NoProgress:
    """Progress that shows nothing."""

    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def status(self, text: str) -> None:
        pass


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class LineProgress:
    """Progress as log lines: each status change, and the count with elapsed time and the
    estimated time left at most every ``every_seconds`` (and at the end).

    >>> import io
    >>> out = io.StringIO()
    >>> p = LineProgress(out, every_seconds=0, clock=iter(range(100)).__next__)
    >>> p.start("scoring", 4); p.advance(2)
    >>> out.getvalue().splitlines()[-1].split("] ", 1)[1]
    'scoring 2/4 (50%), 1s elapsed, ~1s left'
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        every_seconds: float = 10.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.stream = stream
        self.every_seconds = every_seconds
        self._clock = clock
        self.phase = ""
        self.total = 0
        self.done = 0
        self._t0 = 0.0
        self._last = float("-inf")

    def _say(self, text: str) -> None:
        stream = self.stream or sys.stderr
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=stream, flush=True)

    def start(self, phase: str, total: int) -> None:
        self.phase, self.total, self.done = phase, total, 0
        self._t0 = self._clock()
        self._last = self._t0
        self._say(f"{phase}: 0/{total}")

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = self._clock()
        if now - self._last < self.every_seconds and self.done < self.total:
            return
        self._last = now
        spent = now - self._t0
        pct = 100 * self.done // self.total if self.total else 100
        left = spent / self.done * (self.total - self.done) if self.done else 0.0
        self._say(
            f"{self.phase} {self.done}/{self.total} ({pct}%), {_duration(spent)} elapsed, "
            f"~{_duration(left)} left"
        )

    def status(self, text: str) -> None:
        self._say(text)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class RichProgress:
    """A live rich progress bar (for a terminal); use as a context manager."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task: Any = None

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, phase: str, total: int) -> None:
        self._task = self._progress.add_task(phase, total=total)

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)

    def status(self, text: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, description=text)
        else:
            self._progress.console.print(text, highlight=False)


def progress_for(stream: TextIO | None = None) -> RichProgress | LineProgress:
    """A bar when ``stream`` (default stderr) is a terminal, log lines otherwise; both are
    context managers.

    >>> import io
    >>> type(progress_for(io.StringIO())).__name__
    'LineProgress'
    """
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return RichProgress()
    return LineProgress(stream)
