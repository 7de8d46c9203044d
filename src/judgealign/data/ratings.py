"""Reader for the normalized human-ratings files (SummEval, USR, SQuALITY, CoNaLa, WMT MQM, ...).

Each line holds ``dataset, item_id, group_id, system, input, output, scores, scale``, and
optionally ``rater_scores`` (individual raters) and ``rationales``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from judgealign.data.files import lines, loads_json
from judgealign.data.item import Item
from judgealign.data.items_io import as_text
from judgealign.data.label import Label
from judgealign.errors import DataError
from judgealign.rubric.loader import rubric_from_dict
from judgealign.rubric.model import MAX_FULLY_ANCHORED_LEVELS, Rubric

MEAN_RATER = "mean"
_REQUIRED = ("item_id", "output", "scores", "scale")
_QUALITY_WORDS = ("very poor", "poor", "fair", "good", "excellent")


class RatingsDataset(BaseModel):
    """Items with their mean human scores (``labels``) and, where known, each rater's
    (``rater_labels``). ``scales`` maps each dimension to its ``(min, max)``."""

    model_config = ConfigDict(frozen=True)

    name: str
    path: str
    items: list[Item]
    labels: list[Label]
    rater_labels: list[Label]
    scales: dict[str, tuple[int, int]]

    @property
    def dimensions(self) -> list[str]:
        return list(self.scales)


def lower_is_better(dimension: str) -> bool:
    """Penalty and error counts (MQM) improve downwards; everything else upwards.

    >>> lower_is_better("accuracy_penalty"), lower_is_better("coherence")
    (True, False)
    """
    return bool(re.search(r"penalt|error", dimension))


def _penalty_rationales(dimension: str, rationales: list[str]) -> list[str]:
    """MQM error notes name their category ("Major Accuracy/Mistranslation: ..."): give each
    penalty dimension its own notes, the total all of them."""
    if not lower_is_better(dimension):
        return rationales
    category = re.sub(r"_?penalt\w*$", "", dimension).replace("_", " ").strip()
    if not category or category in ("mqm total", "total", "mqm"):
        return rationales
    return [r for r in rationales if category.lower() in r.lower()]


def _scale(raw: Any, where: str, dimension: str) -> tuple[int, int]:
    ok = isinstance(raw, list | tuple) and len(raw) == 2
    if ok and all(_number(v) and float(v).is_integer() for v in raw) and raw[0] < raw[1]:
        return int(raw[0]), int(raw[1])
    raise DataError(
        f"{where}: scale of {dimension!r} must be [min, max] integers with min < max, got {raw!r}"
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse(line: str, where: str) -> dict[str, Any]:
    record = loads_json(line, where, "one rating record per line")
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object")
    missing = [k for k in _REQUIRED if k not in record]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    for key in ("scores", "scale"):
        if not isinstance(record[key], dict) or not record[key]:
            raise DataError(f"{where}: {key!r} must be an object of dimension -> value")
    if record.get("input") is not None and not isinstance(record["input"], dict):
        raise DataError(f"{where}: 'input' must be an object of name -> text")
    if not str(record["item_id"]).strip() or isinstance(record["item_id"], dict | list):
        raise DataError(f"{where}: 'item_id' must be a non-empty string or number")
    raters = record.get("rater_scores")
    if raters is not None and not (
        isinstance(raters, list)
        and all(isinstance(r, dict) and isinstance(r.get("scores") or {}, dict) for r in raters)
    ):
        raise DataError(f"{where}: 'rater_scores' must be a list of {{rater, scores}} objects")
    return record


def _check_scores(
    record: dict[str, Any],
    where: str,
    scales: dict[str, tuple[int, int]],
    first_where: str,
    rubric: Rubric | None,
) -> None:
    """Every score of a record on its dimension's scale (and the rubric's, when given): an
    off-scale or malformed score is caught here, naming its line, before anything runs."""
    for dimension, raw in record["scale"].items():
        declared = _scale(raw, where, str(dimension))
        if str(dimension) in scales and declared != scales[str(dimension)]:
            low, high = scales[str(dimension)]
            raise DataError(
                f"{where}: scale of {dimension!r} is {list(declared)} here but [{low}, {high}] "
                f"on {first_where}; one scale per dimension"
            )
    sources = [("", record["scores"])]
    for entry in record.get("rater_scores") or []:
        sources.append((f"rater {entry.get('rater')!s}: ", entry.get("scores") or {}))
    for who, scores in sources:
        for dimension, score in scores.items():
            if dimension not in scales:
                raise DataError(
                    f"{where}: {who}score for {dimension!r}, which the file's scale does not "
                    f"declare (it declares {', '.join(scales)}); add it to 'scale' or remove it"
                )
            if score is None:
                continue  # not rated on this dimension
            if not _number(score) or not math.isfinite(score):
                raise DataError(f"{where}: {who}score of {dimension!r} is not a number: {score!r}")
            low, high = scales[dimension]
            if not low <= score <= high:
                raise DataError(
                    f"{where}: {who}score of {dimension!r} is {score:g}, outside its scale "
                    f"{low}-{high}; fix the score or the scale"
                )
            if rubric is not None and dimension in rubric.dimension_ids:
                rubric.dimension(dimension).scale.check(
                    float(score), where=f"{where}: {who}{dimension!r} in rubric {rubric.id!r}: "
                )


def _select(
    members: dict[str, list[str]], limit: int, seed: int, per_group: int | None
) -> set[str]:
    """Item ids: random groups (whole, or ``per_group`` random members each) until ``limit``."""
    rng = np.random.default_rng(seed)
    groups = list(members)
    chosen: set[str] = set()
    for index in rng.permutation(len(groups)):
        if len(chosen) >= limit:
            break
        ids = members[groups[int(index)]]
        if per_group is not None and len(ids) > per_group:
            ids = [ids[int(i)] for i in sorted(rng.choice(len(ids), per_group, replace=False))]
        chosen.update(ids)
    return chosen


def load_ratings(
    path: str | Path,
    *,
    limit: int | None = None,
    dimensions: Sequence[str] | None = None,
    seed: int = 0,
    per_group: int | None = None,
    rubric: Rubric | None = None,
) -> RatingsDataset:
    """Load a ratings file; ``limit`` keeps whole groups, chosen with ``seed``, until at least
    ``limit`` items; ``dimensions`` keeps only those dimensions. ``per_group`` keeps at most
    that many items of each chosen group, so a limited sample spans more groups (SummEval has
    16 summaries per article: ``limit=40`` is 3 articles whole, or 20 with ``per_group=2``).

    The whole file is checked first, so a bad line stops the load (a DataError naming
    ``file:line``) before any run starts: a malformed record, a score that is not a number,
    off its dimension's scale (or ``rubric``'s, when given) or for a dimension the scale does
    not declare, and a dimension declared with two scales.

    >>> ds = load_ratings("summeval_expert.jsonl", limit=20)  # doctest: +SKIP
    >>> len(ds.items), ds.dimensions  # doctest: +SKIP
    (32, ['coherence', 'consistency', 'fluency', 'relevance'])
    """
    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: ratings file not found; check the path")
    records: list[tuple[dict[str, Any], str]] = []
    for number, line in lines(source):
        if line.strip():
            where = f"{source}:{number}"
            records.append((_parse(line, where), where))
    if not records:
        raise DataError(f"{source}: no ratings in this file")

    first, first_where = records[0]
    all_scales = {str(d): _scale(v, first_where, str(d)) for d, v in first["scale"].items()}
    if rubric is not None:
        unknown = [d for d in (dimensions or all_scales) if d not in rubric.dimension_ids]
        if unknown:
            raise DataError(
                f"{source}: dimension(s) {', '.join(unknown)} are not in rubric {rubric.id!r} "
                f"({', '.join(rubric.dimension_ids)}); pick them with --dimension or use "
                "another rubric"
            )
    seen: dict[str, str] = {}
    for record, where in records:
        _check_scores(record, where, all_scales, first_where, rubric)
        item_id = str(record["item_id"])
        if item_id in seen:
            raise DataError(f"{where}: duplicate item_id {item_id!r} (first at {seen[item_id]})")
        seen[item_id] = where
    if dimensions is not None:
        unknown = [d for d in dimensions if d not in all_scales]
        if unknown:
            raise DataError(
                f"{source}: unknown dimension(s) {', '.join(unknown)}; "
                f"this file has {', '.join(all_scales)}"
            )
        scales = {d: all_scales[d] for d in dimensions}
    else:
        scales = all_scales

    if per_group is not None and per_group < 1:
        raise DataError(f"{source}: per_group must be at least 1, not {per_group}")
    if limit is not None or per_group is not None:
        members: dict[str, list[str]] = {}
        for record, _ in records:
            group = str(record.get("group_id") or record["item_id"])
            members.setdefault(group, []).append(str(record["item_id"]))
        chosen = _select(members, limit if limit is not None else len(records), seed, per_group)
        records = [r for r in records if str(r[0]["item_id"]) in chosen]

    items: list[Item] = []
    labels: list[Label] = []
    rater_labels: list[Label] = []
    name = str(first.get("dataset") or source.stem)
    for record, _ in records:
        item_id = str(record["item_id"])
        raw_inputs = record.get("input") or {}
        metadata: dict[str, Any] = {"dataset": record.get("dataset", name)}
        metadata["system"] = record.get("system")
        if record.get("raters"):
            metadata["raters"] = [str(r) for r in record["raters"]]
        items.append(
            Item(
                id=item_id,
                kind="text",
                output=as_text(record["output"]),
                inputs={str(k): as_text(v) for k, v in raw_inputs.items()},
                group=str(record.get("group_id") or item_id),
                metadata=metadata,
            )
        )
        rationales = [as_text(r) for r in record.get("rationales") or [] if r]
        scores = record["scores"]
        for dimension in scales:
            score = scores.get(dimension)
            if score is None:
                continue
            labels.append(
                Label(
                    item=item_id,
                    dimension=dimension,
                    score=float(score),
                    rationale="\n".join(_penalty_rationales(dimension, rationales)),
                    rater=MEAN_RATER,
                )
            )
        for entry in record.get("rater_scores") or []:
            rater = str(entry.get("rater"))
            for dimension, score in (entry.get("scores") or {}).items():
                if dimension in scales and score is not None:
                    rater_labels.append(
                        Label(
                            item=item_id,
                            dimension=dimension,
                            score=float(score),
                            rationale=as_text(entry.get("rationale")),
                            rater=rater,
                        )
                    )
    return RatingsDataset(
        name=name,
        path=str(source),
        items=items,
        labels=labels,
        rater_labels=rater_labels,
        scales=scales,
    )


def _dimension_id(name: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_\-]+", "_", name.lower()).strip("_-")
    return cleaned or "dimension"


def _anchor(dimension: str, level: int, low: int, high: int) -> str:
    words = dimension.replace("_", " ")
    t = (level - low) / (high - low)
    if dimension.startswith("prefers_"):
        if level == high:
            return f"{words}: yes, the output is preferred over the alternative"
        if level == low:
            return "no: the alternative is preferred"
        return "no clear preference"
    if lower_is_better(dimension):
        topic = re.sub(r"_?penalt\w*$", "", dimension).replace("_", " ") or words
        if level == low:
            return f"best: no {topic} errors"
        if level == high:
            return f"worst: the maximum {topic} penalty (many or critical errors)"
        severity = "minor" if t < 0.34 else "major" if t < 0.67 else "severe"
        return f"{severity} {topic} errors"
    word = _QUALITY_WORDS[round(t * (len(_QUALITY_WORDS) - 1))]
    if level == low:
        return f"worst: {word} {words}"
    if level == high:
        return f"best: {word} {words}"
    return f"{word} {words}"


def rubric_for_ratings(dataset: RatingsDataset, path: str | Path | None = None) -> Rubric:
    """A generic rubric generated from a ratings file's dimensions and scales.

    A fallback when no hand-written rubric exists: anchors say only which end is best
    (penalties: lower is better) and interpolate the levels between; wide scales (0-100)
    are anchored at min, middle and max.
    """
    source = str(path if path is not None else dataset.path)
    dims: list[dict[str, Any]] = []
    for dimension, (low, high) in dataset.scales.items():
        n_levels = high - low + 1
        if n_levels <= MAX_FULLY_ANCHORED_LEVELS:
            levels = list(range(low, high + 1))
        else:
            levels = sorted({low, (low + high) // 2, high})
        direction = "lower is better" if lower_is_better(dimension) else "higher is better"
        name = dimension.replace("_", " ").capitalize()
        description = f"{name} of the output, scored {low}-{high}; {direction}."
        if dimension.startswith("prefers_"):
            description = f"{name}: {high} if the output is preferred over the alternative."
        dims.append(
            {
                "id": _dimension_id(dimension),
                "name": name,
                "description": description,
                "scale": {
                    "min": low,
                    "max": high,
                    "anchors": {lv: _anchor(dimension, lv, low, high) for lv in levels},
                    "lower_is_better": lower_is_better(dimension),
                },
            }
        )
    data = {
        "id": _dimension_id(dataset.name),
        "name": f"{dataset.name} (generated)",
        "description": (
            f"Generated from the scales in {source}; generic anchors, replace with a "
            "hand-written rubric for real use."
        ),
        "item_kind": "text",
        "dimensions": dims,
    }
    return rubric_from_dict(data, source=source)
