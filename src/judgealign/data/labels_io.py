"""Read, write and validate expert labels as JSONL or CSV.

One label a line (or row): ``item`` (id or path), ``dimension``, ``score``, ``rationale``
(optional) and ``rater`` (optional, default ``expert``).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from judgealign.data.files import lines, loads_json, read_text
from judgealign.data.item import Item
from judgealign.data.items_io import ItemIndex
from judgealign.data.label import Label
from judgealign.errors import DataError
from judgealign.rubric.model import Rubric

COLUMNS = ("item", "dimension", "score", "rationale", "rater")
REQUIRED = ("item", "dimension", "score")
DEFAULT_RATER = "expert"
_NA_WORDS = frozenset({"na", "n/a", "not applicable"})


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise DataError(f"{path}: unsupported labels file; use a .jsonl or .csv file")


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in lines(path, encoding="utf-8-sig"):
        if not line.strip():
            continue
        record = loads_json(line, f"{path}:{number}", "write one label object per line")
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object with {', '.join(REQUIRED)}")
        yield number, record


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import io

    with io.StringIO(read_text(path, encoding="utf-8-sig"), newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise DataError(
                f"{path}:1: missing column(s) {', '.join(missing)}; "
                f"the header must name {', '.join(COLUMNS)}"
            )
        start = reader.line_num + 1
        for row in reader:
            # A quoted rationale may span lines: report the line where the record starts.
            number, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            yield number, dict(zip(header, row, strict=False))


def _score(value: Any, where: str, dimension: str, rubric: Rubric | None) -> float:
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NA_WORDS and rubric is not None:
            na = rubric.dimension(dimension).scale.na_value
            if na is not None:
                return float(na)
            raise DataError(
                f"{where}: dimension {dimension!r} has no N/A value; give a score on its scale"
            )
        if not text:
            raise DataError(f"{where}: missing score; give a number")
        try:
            value = float(text)
        except ValueError:
            raise DataError(f"{where}: score {text!r} is not a number; give a number") from None
    if value is None:
        raise DataError(f"{where}: missing score; give a number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{where}: score {value!r} is not a number; give a number")
    if not math.isfinite(value):
        raise DataError(f"{where}: score {value!r} is not a finite number; give a number")
    return float(value)


def _text_field(record: dict[str, Any], key: str, default: str = "") -> str:
    value = record.get(key)
    if value is None:
        return default
    return str(value).strip() if key != "rationale" else str(value)


def read_labels(path: str | Path, rubric: Rubric | None = None) -> list[Label]:
    """Read labels from a ``.jsonl`` or ``.csv`` file; with a rubric, check them against it.

    Errors name ``file:line`` and the fix: missing fields, non-numeric scores, unknown
    dimensions, off-scale scores, and a second label for one (item, dimension, rater).
    With a rubric, ``NA`` / ``n/a`` as score means the dimension's N/A value.

    >>> import tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), "l.jsonl")
    >>> _ = open(f, "w").write('{"item": "a", "dimension": "d", "score": 2}\\n')
    >>> read_labels(f)[0].id
    'a::d::expert'
    """
    source = Path(path)
    kind = _format(source)
    if not source.is_file():
        raise DataError(f"{source}: labels file not found; check the path")
    records = _jsonl_records(source) if kind == "jsonl" else _csv_records(source)
    labels: list[Label] = []
    first_line: dict[tuple[str, str, str], int] = {}
    for number, record in records:
        where = f"{source}:{number}"
        for field in ("item", "dimension"):
            if not _text_field(record, field):
                raise DataError(
                    f"{where}: missing {field!r}; each label needs {', '.join(REQUIRED)}"
                )
        item = _text_field(record, "item")
        dimension = _text_field(record, "dimension")
        if rubric is not None and dimension not in rubric.dimension_ids:
            raise DataError(
                f"{where}: unknown dimension {dimension!r} for rubric {rubric.id!r}; "
                f"use one of {', '.join(rubric.dimension_ids)}"
            )
        if "score" not in record:
            raise DataError(f"{where}: missing 'score'; give a number")
        score = _score(record["score"], where, dimension, rubric)
        if rubric is not None:
            rubric.dimension(dimension).scale.check(score, where=f"{where}: ")
        rater = _text_field(record, "rater") or DEFAULT_RATER
        for name, value in (("dimension", dimension), ("rater", rater)):
            if "::" in value:
                raise DataError(f"{where}: {name} {value!r} must not contain '::'; rename it")
        key = (item, dimension, rater)
        if key in first_line:
            raise DataError(
                f"{where}: duplicate label for item {item!r}, dimension {dimension!r}, rater "
                f"{rater!r} (first on line {first_line[key]}); keep one"
            )
        first_line[key] = number
        labels.append(
            Label(
                item=item,
                dimension=dimension,
                score=score,
                rationale=_text_field(record, "rationale"),
                rater=rater,
            )
        )
    return labels


def _plain_score(score: float) -> int | float:
    return int(score) if float(score).is_integer() else score


def write_labels(path: str | Path, labels: Sequence[Label]) -> None:
    """Write labels as ``.jsonl`` or ``.csv`` (by suffix); ``read_labels`` reads them back."""
    target = Path(path)
    kind = _format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "item": lb.item,
            "dimension": lb.dimension,
            "score": _plain_score(lb.score),
            "rationale": lb.rationale,
            "rater": lb.rater,
        }
        for lb in labels
    ]
    # Temp file + replace: an interrupted write never leaves a half file under the real name.
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        if kind == "jsonl":
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    tmp.replace(target)


def validate_labels(
    labels: Sequence[Label], rubric: Rubric, items: Sequence[Item] | None = None
) -> list[Label]:
    """Check labels against a rubric (and items); return them with ``item`` set to item ids.

    Raises DataError on an unknown dimension, an off-scale score, a duplicate (item,
    dimension, rater) or, when ``items`` are given, a label whose item is not among them.
    """
    index = ItemIndex(items) if items is not None else None
    seen: set[tuple[str, str, str]] = set()
    result: list[Label] = []
    for label in labels:
        where = f"label {label.id}: "
        if label.dimension not in rubric.dimension_ids:
            raise DataError(
                f"{where}unknown dimension {label.dimension!r} for rubric {rubric.id!r}; "
                f"use one of {', '.join(rubric.dimension_ids)}"
            )
        rubric.dimension(label.dimension).scale.check(label.score, where=where)
        if index is not None:
            try:
                item_id = index.resolve(label.item).id
            except DataError as exc:
                raise DataError(f"{where}{exc}") from None
            if item_id != label.item:
                label = label.model_copy(update={"item": item_id})
        key = (label.item, label.dimension, label.rater)
        if key in seen:
            raise DataError(f"{where}duplicate label for this item, dimension and rater; keep one")
        seen.add(key)
        result.append(label)
    return result
