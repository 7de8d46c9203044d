"""A labelling session: items, a rubric, one rater's labels and the judge's scores; no HTTP.

Saving rewrites the whole labels file atomically (a temporary file in the same folder, then
``os.replace``), re-reading it first, so labels of other raters, other dimensions and other
items (or ones another tool wrote meanwhile) are kept as they are.

>>> import tempfile
>>> from pathlib import Path
>>> from judgealign.data.item import Item
>>> from judgealign.rubric import load_rubric
>>> folder = Path(tempfile.mkdtemp())
>>> items = [Item(id="a/1", output="print(1)")]
>>> s = LabellingSession(items, load_rubric("ml-notebook"), folder / "labels.jsonl").load()
>>> s.save("a/1", "model_use", 2, "fits then predicts").id
'a/1::model_use::expert'
>>> [lb.score for lb in LabellingSession(items, s.rubric, folder / "labels.jsonl").load().labels]
[2.0]
"""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict

from judgealign.data.item import Item
from judgealign.data.items_io import ItemIndex
from judgealign.data.label import Label
from judgealign.data.labels_io import DEFAULT_RATER, read_labels, write_labels
from judgealign.errors import ConfigError, DataError
from judgealign.judge.judgement import Judgement
from judgealign.rubric.model import Rubric

LABEL_SUFFIXES = (".jsonl", ".ndjson", ".csv")
# The expert reads the whole item, not the judge's budgeted excerpt; notebook outputs are
# still capped per output by the renderer, so base64 plots never reach the page.
DISPLAY_BUDGET_TOKENS = 1_000_000
# Judges with a score blend or calibration give fractional scores: closer than this counts
# as agreement.
AGREEMENT_TOLERANCE = 0.5

Order = Literal["file", "disagreements"]
# A label in the file with its original JSONL line (None for CSV or a label written here).
Row = tuple[Label, str | None]


class ItemSummary(BaseModel):
    """One row of the item list: how far this rater got and how often the judge differs."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    labelled: int
    total: int
    disagreements: int = 0


class JudgeView(BaseModel):
    """What the judge said on one dimension (``score`` is None when it failed)."""

    model_config = ConfigDict(frozen=True)

    score: float | None
    rationale: str = ""
    error: str | None = None
    model: str = ""


class ItemView(BaseModel):
    """One item as the page shows it: its text, this rater's labels and the judge's scores."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    kind: str
    text: str
    labels: dict[str, Label]
    judgements: dict[str, JudgeView]


class SessionState(BaseModel):
    """The rubric, the item list with progress, and who is labelling."""

    model_config = ConfigDict(frozen=True)

    rater: str
    labels_path: str
    rubric_id: str
    rubric_name: str
    dimensions: list[dict[str, object]]
    items: list[ItemSummary]
    labelled: int
    total: int
    has_judgements: bool


def read_judgements(path: Path) -> list[Judgement]:
    """Judgements from a ``judgealign score --out`` file; the last line per item wins.

    A torn last line (an interrupted run) is skipped; any other bad line is a DataError.
    """
    if not path.is_file():
        raise DataError(f"{path}: judgements file not found; give the --out of `judgealign score`")
    # split("\n"), not splitlines(): rationales may hold a raw U+2028 or form feed.
    text = path.read_text(encoding="utf-8")
    lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    found: dict[tuple[str, str], Judgement] = {}
    for number, line in lines:
        try:
            j = Judgement.model_validate(json.loads(line))
        except ValueError:  # pydantic's ValidationError is one too
            if number == lines[-1][0]:
                continue
            raise DataError(
                f"{path}:{number}: not a judgement; give the JSONL that `judgealign score` wrote"
            ) from None
        # A later retry replaces a failed attempt, but a failure never hides a success.
        if j.ok or not (found.get(j.key) and found[j.key].ok):
            found[j.key] = j
    return list(found.values())


def _json_line(label: Label) -> str:
    """One label as ``write_labels`` writes it to JSONL."""
    row = label.model_dump(exclude={"schema_version"})  # item, dimension, score, rationale, rater
    row["score"] = int(label.score) if float(label.score).is_integer() else label.score
    return json.dumps(row, ensure_ascii=False) + "\n"


def _raw_lines(path: Path) -> list[str]:
    """A JSONL file's non-blank lines, split exactly as ``read_labels`` splits them."""
    with path.open(encoding="utf-8-sig") as fh:
        return [line if line.endswith("\n") else line + "\n" for line in fh if line.strip()]


def _atomic_write(path: Path, rows: Sequence[Row]) -> None:
    """Write ``rows`` so that a crash leaves either the old file or the new one.

    JSONL rows keep their original line (extra fields, key order, spacing) when they have
    one; CSV files are rewritten by ``write_labels``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        if path.suffix.lower() == ".csv":
            write_labels(tmp, [label for label, _ in rows])
        else:
            text = "".join(raw if raw is not None else _json_line(lb) for lb, raw in rows)
            tmp.write_text(text, encoding="utf-8")
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes the file private; keep the permissions the labels file had.
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class LabellingSession:
    """One rater labelling ``items`` on ``rubric``'s dimensions into ``labels_path``.

    ``file_rubric`` (default ``rubric``) validates the labels file: pass the full rubric when
    ``rubric`` is a subset, so labels on the other dimensions stay valid and untouched.
    Call ``load`` before anything else; methods are safe to call from several threads.

    >>> from judgealign.rubric import load_rubric
    >>> s = LabellingSession([], load_rubric("ml-notebook"), Path("l.jsonl"), rater="ann")
    >>> s.rater
    'ann'
    """

    def __init__(
        self,
        items: Sequence[Item],
        rubric: Rubric,
        labels_path: Path,
        *,
        rater: str = DEFAULT_RATER,
        judgements: Sequence[Judgement] = (),
        file_rubric: Rubric | None = None,
    ) -> None:
        self.items = list(items)
        self.rubric = rubric
        self.labels_path = Path(labels_path)
        self.rater = rater
        self.judgements = list(judgements)
        self.file_rubric = file_rubric or rubric
        self._lock = threading.RLock()
        self._index = ItemIndex([])
        self._by_id: dict[str, Item] = {}
        self._file: list[Row] = []  # every label in the file, in file order
        self._mine: dict[tuple[str, str], Label] = {}  # (item id, dimension) -> this rater's
        self._judge: dict[tuple[str, str], Judgement] = {}
        self._texts: dict[str, str] = {}
        self._saved: set[str] = set()

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> Self:
        """Check the rater, index the items and read the labels file (DataError if broken)."""
        rater = self.rater.strip()
        if not rater or "::" in rater:
            raise ConfigError(f"--rater {self.rater!r}: give a non-empty name without '::'")
        self.rater = rater
        if self.labels_path.suffix.lower() not in LABEL_SUFFIXES:
            raise DataError(f"{self.labels_path}: labels must go to a .jsonl or .csv file")
        if self.labels_path.exists() and not self.labels_path.is_file():
            raise DataError(f"{self.labels_path}: not a file; give a .jsonl or .csv path")
        if not self.items:
            raise DataError("no items to label; give notebooks, folders or a .jsonl of items")
        with self._lock:
            self._index = ItemIndex(self.items)
            self._by_id = {it.id: it for it in self.items}
            self._judge = {}
            for j in self.judgements:
                item = self._resolve(j.item)
                if item is not None and j.dimension in self.rubric.dimension_ids:
                    self._judge[(item.id, j.dimension)] = j
            self._reload()
        return self

    def _resolve(self, ref: str) -> Item | None:
        if ref in self._by_id:
            return self._by_id[ref]
        try:
            return self._index.resolve(ref)
        except DataError:
            return None  # a label or judgement of an item not being labelled now

    def _key(self, label: Label) -> tuple[str, str] | None:
        """(item id, dimension) of one of this rater's labels, None for anyone else's."""
        if label.rater != self.rater:
            return None
        item = self._resolve(label.item)
        return None if item is None else (item.id, label.dimension)

    def _reload(self) -> None:
        path = self.labels_path
        self._file = []
        if path.exists():
            raw = _raw_lines(path) if path.suffix.lower() != ".csv" else []
            labels = read_labels(path, self.file_rubric)
            # A writer racing this read could make the two disagree: then rewrite normalised.
            lines: list[str | None] = list(raw) if len(raw) == len(labels) else [None] * len(labels)
            self._file = list(zip(labels, lines, strict=True))
        self._mine = {}
        for lb, _ in self._file:
            key = self._key(lb)
            if key is not None and key[1] in self.rubric.dimension_ids:
                self._mine[key] = lb.model_copy(update={"item": key[0]})

    # -- reading ----------------------------------------------------------------------------
    @property
    def labels(self) -> list[Label]:
        """This rater's labels on the loaded items and shown dimensions."""
        with self._lock:
            return list(self._mine.values())

    @property
    def saved_count(self) -> int:
        """How many distinct labels were saved (or changed) through this session."""
        return len(self._saved)

    def item(self, ref: str) -> Item:
        """The item ``ref`` names; DataError naming example ids otherwise."""
        found = self._by_id.get(ref)
        return found if found is not None else self._index.resolve(ref)

    def title(self, item: Item) -> str:
        title = item.metadata.get("title")
        return title if isinstance(title, str) and title.strip() else item.id

    def text(self, item: Item) -> str:
        """The item rendered as the judge renders it (notebooks as numbered cells)."""
        from judgealign.render import render_item

        with self._lock:
            if item.id not in self._texts:
                self._texts[item.id] = render_item(item, budget_tokens=DISPLAY_BUDGET_TOKENS)
            return self._texts[item.id]

    def disagrees(self, label: Label, judgement: Judgement | None) -> bool:
        """Whether the judge scored this label's dimension differently (N/A vs score counts)."""
        if judgement is None or not judgement.ok or judgement.score is None:
            return False
        scale = self.rubric.dimension(label.dimension).scale
        if scale.is_na(label.score) or scale.is_na(judgement.score):
            return scale.is_na(label.score) != scale.is_na(judgement.score)
        return abs(label.score - judgement.score) >= AGREEMENT_TOLERANCE

    def summary(self, item: Item) -> ItemSummary:
        keys = [(item.id, d) for d in self.rubric.dimension_ids]
        with self._lock:
            mine = {k: self._mine[k] for k in keys if k in self._mine}
            differ = sum(self.disagrees(lb, self._judge.get(k)) for k, lb in mine.items())
        return ItemSummary(
            id=item.id,
            title=self.title(item),
            labelled=len(mine),
            total=len(keys),
            disagreements=differ,
        )

    def ordered(self, order: Order = "file") -> list[ItemSummary]:
        """Item rows in load order, or with the most judge disagreements first.

        Ties (and items without disagreements) keep the load order.
        """
        rows = [self.summary(it) for it in self.items]
        if order == "disagreements":
            rows.sort(key=lambda row: -row.disagreements)  # sort is stable
        return rows

    def state(self, order: Order = "file") -> SessionState:
        rows = self.ordered(order)
        return SessionState(
            rater=self.rater,
            labels_path=str(self.labels_path),
            rubric_id=self.rubric.id,
            rubric_name=self.rubric.name,
            dimensions=[d.model_dump(mode="json") for d in self.rubric.dimensions],
            items=rows,
            labelled=sum(r.labelled for r in rows),
            total=sum(r.total for r in rows),
            has_judgements=bool(self._judge),
        )

    def view(self, ref: str) -> ItemView:
        """Everything the page shows for one item."""
        item = self.item(ref)
        dims = self.rubric.dimension_ids
        with self._lock:
            labels = {d: self._mine[(item.id, d)] for d in dims if (item.id, d) in self._mine}
            judged = {d: self._judge[(item.id, d)] for d in dims if (item.id, d) in self._judge}
        return ItemView(
            id=item.id,
            title=self.title(item),
            kind=item.kind,
            text=self.text(item),
            labels=labels,
            judgements={
                d: JudgeView(score=j.score, rationale=j.rationale, error=j.error, model=j.model)
                for d, j in judged.items()
            },
        )

    # -- writing ----------------------------------------------------------------------------
    def _check(self, item_ref: str, dimension: str, score: object) -> tuple[Item, float]:
        item = self.item(item_ref)
        scale = self.rubric.dimension(dimension).scale  # ConfigError names the known ones
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise DataError(f"score {score!r} is not a number; give a level of {dimension!r}")
        if not math.isfinite(score):
            raise DataError(f"score {score!r} is not a finite number; give a level")
        scale.check(float(score), where=f"{item.id} / {dimension}: ")
        return item, float(score)

    def save(self, item_ref: str, dimension: str, score: object, rationale: str = "") -> Label:
        """Save (or replace) this rater's label; returns it. The file is rewritten atomically.

        DataError / ConfigError on an unknown item or dimension or an off-scale score, with
        the file untouched.
        """
        item, value = self._check(item_ref, dimension, score)
        label = Label(
            item=item.id, dimension=dimension, score=value, rationale=rationale, rater=self.rater
        )
        label_key = (item.id, dimension)
        with self._lock:
            self._reload()  # keep whatever else reached the file since we last read it
            hits = [n for n, (lb, _) in enumerate(self._file) if self._key(lb) == label_key]
            rows = [row for n, row in enumerate(self._file) if n not in hits[1:]]
            if hits:  # in place, so the file's order survives edits
                rows[hits[0]] = (label, None)
            else:
                rows.append((label, None))
            _atomic_write(self.labels_path, rows)
            self._file = rows
            self._mine[(item.id, dimension)] = label
            self._saved.add(label.id)
        return label
