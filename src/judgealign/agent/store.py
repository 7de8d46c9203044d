"""An agent run folder: finished work survives interruption (kill -9 included) and is reused.

Layout::

    RUN/settings.json          what the run was made with (a resume under others is refused)
    RUN/generations.jsonl      one line per notebook generated (or failed)
    RUN/executions.jsonl       one line per notebook executed (--execute)
    RUN/judgements.jsonl       one line per judgement (notebook x dimension)
    RUN/notebooks/CASE/N.ipynb the generated notebooks
    RUN/executed/CASE/N.ipynb  their executed copies
    RUN/work/CASE/N/           each generation's working folder (prompt, data, agent log)
    RUN/judges/*.judge.json    copies of the judge files used
    RUN/scoreboard.json, RUN/report.html

Every line is appended, flushed and fsynced when its step finishes (by a writer thread that
commits whatever is waiting together, see ``Journal``); a torn last line (the process was
killed mid-write) is cut on open. A notebook is written atomically before its line:
a kill between the two leaves a complete notebook without a line, which the next run adopts
instead of asking the agent again.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from judgealign.agent.records import Execution, Generation, ScoredJudgement, notebook_id
from judgealign.data.jsonl import repair_torn_tail
from judgealign.errors import DataError
from judgealign.judge.failures import redo_on_resume

GENERATIONS = "generations.jsonl"
EXECUTIONS = "executions.jsonl"
JUDGEMENTS = "judgements.jsonl"
SCOREBOARD = "scoreboard.json"
REPORT = "report.html"


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


class SavedDocument(BaseModel):
    """A JSON document of the agent workflow (a scoreboard, a comparison) saved atomically
    and read back checked: a missing, unreadable, foreign, newer or invalid file is a
    one-line ``DataError`` naming it. Subclasses name their file, and give their ``format``
    and ``schema_version`` fields the defaults that identify them."""

    FILE_NAME: ClassVar[str]
    WHAT: ClassVar[str]  # what the errors call it
    MISSING_HINT: ClassVar[str]  # how to make one

    def save(self, path: str | Path) -> Path:
        """Write the document atomically."""
        path = Path(path)
        write_atomic(path, self.model_dump_json(indent=1) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Any:
        """Read a saved document (``path`` may be the folder holding ``FILE_NAME``)."""
        path = Path(path)
        if path.is_dir():
            path = path / cls.FILE_NAME
        what = cls.WHAT
        fields = cls.model_fields
        expected_format, newest = fields["format"].default, fields["schema_version"].default
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: no {what}; {cls.MISSING_HINT}") from None
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable {what} ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != expected_format:
            raise DataError(f"{path}: not a judgealign {what}")
        version = data.get("schema_version", 0)
        if not isinstance(version, int) or version > newest:
            raise DataError(
                f"{path}: {what} schema {version!r} is newer than this judgealign reads "
                f"({newest}); upgrade judgealign"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise DataError(f"{path}: invalid {what} ({loc}: {err['msg']})") from None


class Journal:
    """Appends lines to JSONL files in the order given, from a writer thread that flushes and
    fsyncs once per batch of waiting lines (group commit).

    An fsync takes milliseconds; done per line on the event loop it stalled every other
    generation and judgement in flight (a third of the wall time at 32 parallel calls). A kill
    loses at most the lines queued in the last few milliseconds, whose steps are redone.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Path, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    def append(self, path: Path, line: str) -> None:
        if self._error is not None:
            raise self._error
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, daemon=True, name="journal")
                self._thread.start()
        self._queue.put((path, line))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = [item]
            while True:  # take everything already waiting: one fsync per file for all of it
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            by_file: dict[Path, list[str]] = {}
            for entry in batch:
                if entry is not None:
                    by_file.setdefault(entry[0], []).append(entry[1])
            try:
                for path, lines in by_file.items():
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with path.open("a", encoding="utf-8") as fh:
                        fh.write("".join(line + "\n" for line in lines))
                        fh.flush()
                        os.fsync(fh.fileno())
            except OSError as exc:  # a full disk: surface it on the next append
                self._error = exc
            if stop:
                return

    def close(self) -> None:
        """Write everything queued; the journal can be used again afterwards."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
        if self._error is not None:
            raise self._error


def _read(path: Path, model: type[Any]) -> list[Any]:
    if not path.exists():
        return []
    repair_torn_tail(path)
    out = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                out.append(model.model_validate(json.loads(line)))
            except (ValueError, ValidationError):
                continue  # a line from another schema: its step is simply redone
    return out


class RunStore:
    """The records of one run folder, loaded on open; later lines win.

    ``retry_failed`` redoes failed generations and unreadable judgements on this run (provider
    failures are always redone: they say nothing about the agent or the judge).
    """

    def __init__(self, run_dir: Path, *, retry_failed: bool = False) -> None:
        self.run_dir = run_dir
        self.retry_failed = retry_failed
        self.generations: dict[str, Generation] = {}
        self.executions: dict[str, Execution] = {}
        self.judgements: dict[tuple[str, str], ScoredJudgement] = {}
        self.journal = Journal()
        for g in _read(run_dir / GENERATIONS, Generation):
            self.generations[g.id] = g
        for e in _read(run_dir / EXECUTIONS, Execution):
            self.executions[e.id] = e
        for j in _read(run_dir / JUDGEMENTS, ScoredJudgement):
            self.judgements[(j.id, j.judgement.dimension)] = j

    # -- paths ----------------------------------------------------------------------------
    def notebook_path(self, case: str, index: int) -> Path:
        return self.run_dir / "notebooks" / case / f"{index}.ipynb"

    def executed_path(self, case: str, index: int) -> Path:
        return self.run_dir / "executed" / case / f"{index}.ipynb"

    def workdir(self, case: str, index: int) -> Path:
        return self.run_dir / "work" / case / str(index)

    def relative(self, path: Path) -> str:
        return path.relative_to(self.run_dir).as_posix()

    # -- generations ----------------------------------------------------------------------
    def finished_generation(self, case: str, index: int) -> Generation | None:
        """The stored generation to reuse, or None when it must be (re)done."""
        g = self.generations.get(notebook_id(case, index))
        if g is None:
            return None
        if g.ok:
            path = self.run_dir / (g.notebook or "")
            if not path.is_file() or sha256_text(path.read_text(encoding="utf-8")) != g.sha256:
                return None  # the file went missing or was edited: generate it again
            return g
        if g.failure == "provider" or self.retry_failed:
            return None
        return g

    def add_generation(self, g: Generation) -> None:
        self.generations[g.id] = g
        self.journal.append(self.run_dir / GENERATIONS, g.model_dump_json())

    # -- executions -----------------------------------------------------------------------
    def finished_execution(self, case: str, index: int, sha256: str | None) -> Execution | None:
        e = self.executions.get(notebook_id(case, index))
        if e is None or e.sha256 != sha256:
            return None
        if e.result.status == "crash" and self.retry_failed:
            return None
        return e

    def add_execution(self, e: Execution) -> None:
        self.executions[e.id] = e
        self.journal.append(self.run_dir / EXECUTIONS, e.model_dump_json())

    # -- judgements -----------------------------------------------------------------------
    def judged(self, case: str, index: int, sha256: str | None) -> set[str]:
        """Dimensions of this notebook (this version of it) that need no new judgement."""
        nid = notebook_id(case, index)
        return {
            dim
            for (item, dim), rec in self.judgements.items()
            if item == nid
            and rec.sha256 == sha256
            and not redo_on_resume(rec.judgement, self.retry_failed)
        }

    def add_judgement(self, rec: ScoredJudgement) -> None:
        self.judgements[(rec.id, rec.judgement.dimension)] = rec
        self.journal.append(self.run_dir / JUDGEMENTS, rec.model_dump_json())

    def close(self) -> None:
        """Write every queued record (call before reading the files, and at the end)."""
        self.journal.close()
