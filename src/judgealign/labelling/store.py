"""The labels store: SQLite in WAL mode behind a labels file that stays the file others read.

Several raters save at once, from threads of one server or from several ``judgealign label``
processes on one labels file. Each save is one SQLite transaction that holds the database's
write lock from reading to writing, so no save overwrites another; it records the change
(who, when, what it replaced) in ``changes``, rewrites the labels file atomically (a temporary
file, fsync, rename) and commits. A save answered as saved survives a ``kill -9`` of any
process, and the labels file is at every moment either the previous export or the next one.

The labels file (``.jsonl`` or ``.csv``) stays what ``load_labels``, ``align`` and
``evaluate`` read. Rows the store did not write keep their exact line. When the file changes
outside the store (a hand edit, another tool), the next operation takes the file as it is and
records the difference in ``changes`` as ``kind="file"``: nothing the file says is
overwritten, and nothing the store held is lost without a record of it.

Adjudicated labels (one per item and dimension) live in the store and are exported to
``<labels stem>.adjudicated.jsonl``: one label per item and dimension, the adjudicated one
where recorded, otherwise the only rater's or the raters' mean (rater ``mean``).

The database sits beside the labels file (``labels.jsonl`` -> ``labels.jsonl.db``, plus
SQLite's ``-wal`` and ``-shm`` files); it needs a local file system (WAL does not work over
NFS).

>>> import tempfile
>>> from pathlib import Path
>>> from judgealign.rubric import load_rubric
>>> path = Path(tempfile.mkdtemp()) / "labels.jsonl"
>>> store = LabelStore(path, load_rubric("ml-notebook")).open()
>>> lb = Label(item="nb.ipynb", dimension="model_use", score=2, rationale="ok", rater="ann")
>>> store.put(lb).score
2.0
>>> [c.kind for c in store.history()], path.read_text().count("\\n")
(['save'], 1)
>>> store.close()
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import stat
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict

from judgealign.data.label import Label
from judgealign.data.labels_io import read_labels, write_labels
from judgealign.errors import DataError
from judgealign.rubric.model import Rubric

STORE_SCHEMA_VERSION = 1
ADJUDICATED_RATER = "adjudicated"
MEAN_RATER = "mean"
# A second writer waits this long for the lock before its save fails (and says so).
BUSY_TIMEOUT_S = 60.0

ChangeKind = Literal["save", "file", "adjudicate"]
Key = tuple[str, str, str]  # item (as written), dimension, rater

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels(
  item TEXT NOT NULL, dimension TEXT NOT NULL, rater TEXT NOT NULL,
  score REAL NOT NULL, rationale TEXT NOT NULL, raw TEXT, position INTEGER NOT NULL,
  updated_at TEXT NOT NULL, PRIMARY KEY(item, dimension, rater));
CREATE TABLE IF NOT EXISTS changes(
  id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
  kind TEXT NOT NULL, item TEXT NOT NULL, dimension TEXT NOT NULL, rater TEXT NOT NULL,
  score REAL, rationale TEXT, previous_score REAL, previous_rationale TEXT);
CREATE TABLE IF NOT EXISTS adjudications(
  item TEXT NOT NULL, dimension TEXT NOT NULL, score REAL NOT NULL, rationale TEXT NOT NULL,
  adjudicator TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY(item, dimension));
"""


class Change(BaseModel):
    """One change to the labels: who made it, when, and what it replaced.

    ``score`` is None when the change removed the label (it left the labels file).
    """

    model_config = ConfigDict(frozen=True)

    id: int
    at: str
    actor: str
    kind: ChangeKind
    item: str
    dimension: str
    rater: str
    score: float | None
    rationale: str | None
    previous_score: float | None = None
    previous_rationale: str | None = None


class Adjudication(BaseModel):
    """The label an adjudicator settled on for one item and dimension."""

    model_config = ConfigDict(frozen=True)

    item: str
    dimension: str
    score: float
    rationale: str
    adjudicator: str
    updated_at: str


@dataclass(frozen=True)
class StoredLabel:
    """A label with its place in the file, its original line and when it last changed."""

    label: Label
    raw: str | None
    position: int
    updated_at: str


def now() -> str:
    """UTC time with milliseconds, as every change records it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def store_path_for(labels_path: Path) -> Path:
    """Where the store of a labels file lives: ``labels.jsonl`` -> ``labels.jsonl.db``."""
    return labels_path.with_name(labels_path.name + ".db")


def adjudicated_path_for(labels_path: Path) -> Path:
    """The one-label-per-item export: ``labels.jsonl`` -> ``labels.adjudicated.jsonl``."""
    return labels_path.with_name(labels_path.stem + ".adjudicated.jsonl")


def label_line(label: Label) -> str:
    """One label as ``write_labels`` writes it to JSONL (with its newline)."""
    row = label.model_dump(exclude={"schema_version"})
    row["score"] = int(label.score) if float(label.score).is_integer() else label.score
    return json.dumps(row, ensure_ascii=False) + "\n"


def _raw_lines(data: bytes) -> list[str]:
    """A JSONL file's non-blank lines, split as ``read_labels`` splits them."""
    text = data.decode("utf-8-sig")
    return [ln if ln.endswith("\n") else ln + "\n" for ln in text.splitlines(True) if ln.strip()]


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(temporary path)`` so a crash leaves old or new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The suffix stays last: writers pick the format (JSONL or CSV) by it.
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes the file private; keep the permissions the file had.
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class LabelStore:
    """The labels of ``labels_path`` (checked against ``rubric``), safe for concurrent writers.

    ``resolve`` maps an item reference as written in the file to an item id (``nb1`` ->
    ``sub/nb1.ipynb``); it groups rows for the adjudicated export. Call ``open`` first;
    every method is safe from several threads, and several processes may open one store.

    >>> LabelStore(Path("l.jsonl"), None).db_path.name  # doctest: +SKIP
    'l.jsonl.db'
    """

    def __init__(
        self,
        labels_path: Path,
        rubric: Rubric | None,
        *,
        db_path: Path | None = None,
        resolve: Callable[[str], str] | None = None,
    ) -> None:
        self.labels_path = Path(labels_path)
        self.rubric = rubric
        self.db_path = Path(db_path) if db_path is not None else store_path_for(self.labels_path)
        self.resolve = resolve or (lambda ref: ref)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    # -- opening --------------------------------------------------------------------------------
    def open(self) -> Self:
        """Create or open the database, then take in the labels file (DataError if broken)."""
        if self.labels_path.suffix.lower() not in (".jsonl", ".ndjson", ".csv"):
            raise DataError(f"{self.labels_path}: labels must go to a .jsonl or .csv file")
        if self.labels_path.exists() and not self.labels_path.is_file():
            raise DataError(f"{self.labels_path}: not a file; give a .jsonl or .csv path")
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before a save is answered (NORMAL may drop the last
            # ones on power loss).
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise DataError(
                f"{self.db_path}: cannot open the labels store ({err}); move it away to rebuild "
                f"it from {self.labels_path.name}"
            ) from None
        self._conn = conn
        with self._write():
            version = self._meta("schema_version")
            if version is not None and int(version) > STORE_SCHEMA_VERSION:
                raise DataError(
                    f"{self.db_path}: written by a newer judgealign (store schema {version}); "
                    "upgrade judgealign"
                )
            self._set_meta("schema_version", str(STORE_SCHEMA_VERSION))
        return self

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("the label store is not open; call open() first")
        return self._conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the database's lock, with the file taken in first."""
        with self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as err:
                raise DataError(
                    f"{self.db_path}: the labels store is busy ({err}); try the save again"
                ) from None
            try:
                self._remove_stale_temporaries()
                self._take_in_file()
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot; an outside edit of the file is taken in first."""
        with self._lock:
            if self._file_changed():
                with self._write() as conn:
                    yield conn
                return
            conn = self.conn
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    # -- meta -----------------------------------------------------------------------------------
    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", (key, value))

    # -- the labels file ------------------------------------------------------------------------
    def _file_bytes(self) -> bytes | None:
        try:
            return self.labels_path.read_bytes()
        except FileNotFoundError:
            return None

    def _file_changed(self) -> bool:
        data = self._file_bytes()
        digest = hashlib.sha256(data).hexdigest() if data is not None else None
        return digest != self._meta("export_sha256")

    def _remove_stale_temporaries(self) -> None:
        # Exports happen only under the write lock we hold: any temporary left is a crash's.
        for leftover in self.labels_path.parent.glob(f".{self.labels_path.name}.*.tmp*"):
            leftover.unlink(missing_ok=True)

    def _take_in_file(self) -> None:
        """Make the store match the labels file when something else changed the file."""
        data = self._file_bytes()
        if data is None:
            if self._meta("export_sha256") is not None or self._count():
                self._export()  # the file was removed: write it again from the store
            return
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._meta("export_sha256"):
            return
        labels = read_labels(self.labels_path, self.rubric)
        raws: list[str | None] = [None] * len(labels)
        if self.labels_path.suffix.lower() != ".csv":
            lines = _raw_lines(data)
            if len(lines) == len(labels):
                raws = list(lines)
        stamp = now()
        known = {r.label.id: r for r in self._rows()}
        seen: set[str] = set()
        for position, (label, raw) in enumerate(zip(labels, raws, strict=True)):
            seen.add(label.id)
            old = known.get(label.id)
            if old is None or (old.label.score, old.label.rationale) != (
                label.score,
                label.rationale,
            ):
                self._record("file", label.rater, label, old.label if old else None, stamp)
                updated = stamp
            else:
                updated = old.updated_at
            self._upsert(label, raw, position, updated)
        for gone in (r for key, r in known.items() if key not in seen):
            self.conn.execute(
                "DELETE FROM labels WHERE item=? AND dimension=? AND rater=?",
                (gone.label.item, gone.label.dimension, gone.label.rater),
            )
            self._record("file", gone.label.rater, None, gone.label, stamp)
        self._set_meta("export_sha256", digest)

    def _export(self) -> None:
        rows = self._rows()
        if self.labels_path.suffix.lower() == ".csv":
            atomic_write(self.labels_path, lambda tmp: write_labels(tmp, [r.label for r in rows]))
        else:
            text = "".join(r.raw if r.raw is not None else label_line(r.label) for r in rows)
            atomic_write(self.labels_path, lambda tmp: _write_text(tmp, text))
        data = self._file_bytes() or b""
        self._set_meta("export_sha256", hashlib.sha256(data).hexdigest())
        adjudicated = self._adjudications()
        target = adjudicated_path_for(self.labels_path)
        if adjudicated or target.exists():
            lines = "".join(label_line(lb) for lb in self._consensus(rows, adjudicated))
            atomic_write(target, lambda tmp: _write_text(tmp, lines))

    def _consensus(
        self, rows: Sequence[StoredLabel], adjudicated: Sequence[Adjudication]
    ) -> list[Label]:
        """One label per item and dimension: adjudicated, else the only rater's, else the mean."""
        settled = {(a.item, a.dimension): a for a in adjudicated}
        grouped: dict[tuple[str, str], list[Label]] = defaultdict(list)
        for r in rows:
            grouped[(self.resolve(r.label.item), r.label.dimension)].append(r.label)
        out: list[Label] = []
        for key in list(grouped) + [k for k in settled if k not in grouped]:
            item, dimension = key
            if key in settled:
                a = settled[key]
                out.append(
                    Label(
                        item=item,
                        dimension=dimension,
                        score=a.score,
                        rationale=a.rationale,
                        rater=ADJUDICATED_RATER,
                    )
                )
                continue
            labels = grouped[key]
            if len(labels) == 1:
                out.append(labels[0].model_copy(update={"item": item}))
                continue
            na = None
            if self.rubric is not None and dimension in self.rubric.dimension_ids:
                na = self.rubric.dimension(dimension).scale.na_value
            applicable = [lb.score for lb in labels if lb.score != na]
            # N/A only when every rater said so, as evaluation's expert_scores treats it.
            score = float(np.mean(applicable)) if applicable else float(labels[0].score)
            reasons = [f"{lb.rater}: {lb.rationale}" for lb in labels if lb.rationale.strip()]
            out.append(
                Label(
                    item=item,
                    dimension=dimension,
                    score=round(score, 4),
                    rationale="\n".join(reasons),
                    rater=MEAN_RATER,
                )
            )
        return out

    # -- rows -----------------------------------------------------------------------------------
    def _count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM labels").fetchone()[0])

    def _rows(self) -> list[StoredLabel]:
        cursor = self.conn.execute(
            "SELECT item, dimension, rater, score, rationale, raw, position, updated_at "
            "FROM labels ORDER BY position, rowid"
        )
        return [
            StoredLabel(
                Label(item=i, dimension=d, rater=r, score=s, rationale=t), raw, int(p), str(u)
            )
            for i, d, r, s, t, raw, p, u in cursor
        ]

    def _upsert(self, label: Label, raw: str | None, position: int, updated_at: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO labels(item, dimension, rater, score, rationale, raw, "
            "position, updated_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
            (
                label.item,
                label.dimension,
                label.rater,
                label.score,
                label.rationale,
                raw,
                position,
                updated_at,
            ),
        )

    def _record(
        self,
        kind: ChangeKind,
        actor: str,
        new: Label | None,
        old: Label | None,
        at: str,
    ) -> None:
        ref = new or old
        if ref is None:
            raise ValueError("a change needs the label it made or the one it removed")
        self.conn.execute(
            "INSERT INTO changes(at, actor, kind, item, dimension, rater, score, rationale, "
            "previous_score, previous_rationale) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                actor,
                kind,
                ref.item,
                ref.dimension,
                ref.rater,
                new.score if new else None,
                new.rationale if new else None,
                old.score if old else None,
                old.rationale if old else None,
            ),
        )

    def rows(self) -> list[StoredLabel]:
        """Every label in file order (an outside edit of the file is taken in first)."""
        with self._read():
            return self._rows()

    def labels(self) -> list[Label]:
        """Every label, as the labels file holds them."""
        return [r.label for r in self.rows()]

    def put(
        self,
        label: Label,
        *,
        replaces: Callable[[Label], bool] | None = None,
        actor: str | None = None,
    ) -> Label:
        """Save ``label`` (replacing the same item, dimension and rater), record the change
        and rewrite the labels file, all in one transaction.

        ``replaces(row)`` names further rows this label supersedes (the same item written
        another way, ``nb1`` for ``sub/nb1.ipynb``): the first keeps its place in the file,
        the others go. Raises DataError when the labels file is broken or the store busy.
        """
        with self._write():
            rows = self._rows()
            hits = [
                r
                for r in rows
                if r.label.id == label.id or (replaces is not None and replaces(r.label))
            ]
            stamp = now()
            position = hits[0].position if hits else max((r.position for r in rows), default=-1) + 1
            for r in hits:
                self.conn.execute(
                    "DELETE FROM labels WHERE item=? AND dimension=? AND rater=?",
                    (r.label.item, r.label.dimension, r.label.rater),
                )
            self._upsert(label, None, position, stamp)
            old = hits[0].label if hits else None
            self._record("save", actor or label.rater, label, old, stamp)
            self._export()
        return label

    def adjudicate(self, decision: Adjudication) -> Adjudication:
        """Record the settled label for one item and dimension (replacing an earlier one)."""
        with self._write():
            stamp = now()
            before = {(a.item, a.dimension): a for a in self._adjudications()}
            old_adj = before.get((decision.item, decision.dimension))
            decision = decision.model_copy(update={"updated_at": stamp})
            self.conn.execute(
                "INSERT OR REPLACE INTO adjudications(item, dimension, score, rationale, "
                "adjudicator, updated_at) VALUES(?, ?, ?, ?, ?, ?)",
                (
                    decision.item,
                    decision.dimension,
                    decision.score,
                    decision.rationale,
                    decision.adjudicator,
                    stamp,
                ),
            )
            new = Label(
                item=decision.item,
                dimension=decision.dimension,
                score=decision.score,
                rationale=decision.rationale,
                rater=ADJUDICATED_RATER,
            )
            old = None
            if old_adj is not None:
                old = new.model_copy(
                    update={"score": old_adj.score, "rationale": old_adj.rationale}
                )
            self._record("adjudicate", decision.adjudicator, new, old, stamp)
            self._export()
        return decision

    def _adjudications(self) -> list[Adjudication]:
        cursor = self.conn.execute(
            "SELECT item, dimension, score, rationale, adjudicator, updated_at "
            "FROM adjudications ORDER BY item, dimension"
        )
        return [
            Adjudication(item=i, dimension=d, score=s, rationale=r, adjudicator=a, updated_at=u)
            for i, d, s, r, a, u in cursor
        ]

    def adjudications(self) -> list[Adjudication]:
        """Every adjudicated label."""
        with self._read():
            return self._adjudications()

    def history(
        self, *, item: str | None = None, dimension: str | None = None, limit: int | None = None
    ) -> list[Change]:
        """Changes, oldest first (the last ``limit``), of one item and dimension when given."""
        where, args = [], []
        if item is not None:
            where.append("item=?")
            args.append(item)
        if dimension is not None:
            where.append("dimension=?")
            args.append(dimension)
        sql = (
            "SELECT id, at, actor, kind, item, dimension, rater, score, rationale, "
            "previous_score, previous_rationale FROM changes"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as conn:
            found = conn.execute(sql, args).fetchall()
        keys = list(Change.model_fields)
        return [Change.model_validate(dict(zip(keys, row, strict=True))) for row in reversed(found)]
