"""Lenient parsing of a judge's answer into (score, rationale)."""

from __future__ import annotations

import json
import re
from typing import Any

from judgealign.errors import ParseError
from judgealign.rubric.model import Scale

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_SCORE_TEXT = re.compile(r"\"?score\"?\s*[:=]\s*\"?(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def _candidate_objects(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCE.finditer(text)]
    # Every balanced {...} span, outermost first: models wrap JSON in prose.
    depth, start = 0, -1
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0 and start >= 0:
                found.append(text[start : i + 1])
    return found


def _as_score(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.search(r"-?\d+(?:\.\d+)?", value)
        if m:
            return float(m.group(0))
        if value.strip().lower() in {"n/a", "na", "not applicable"}:
            return None
    return None


def parse_judgement(text: str, scale: Scale) -> tuple[float, str]:
    """Return ``(score, rationale)`` from a model answer, or raise ParseError.

    Accepts strict JSON, JSON in a code fence or in prose, and a bare ``score: N`` line.
    "N/A" answers map to the scale's N/A value where it has one.

    >>> from judgealign.rubric.model import Scale
    >>> s = Scale(min=1, max=3, anchors={1: "a", 2: "b", 3: "c"}, na_value=0)
    >>> parse_judgement('Sure! {"rationale": "fine", "score": "3"}', s)
    (3.0, 'fine')
    """
    allowed = set(scale.levels) | ({scale.na_value} if scale.na_value is not None else set())
    for blob in _candidate_objects(text) or [text]:
        try:
            data = json.loads(blob)
        except ValueError:
            continue
        if not isinstance(data, dict) or "score" not in data:
            continue
        raw_score = data["score"]
        score = _as_score(raw_score)
        if score is None and isinstance(raw_score, str) and scale.na_value is not None:
            score = float(scale.na_value)
        rationale = str(data.get("rationale") or data.get("justification") or "").strip()
        if score is not None and score in allowed:
            return score, rationale
        raise ParseError(f"score {raw_score!r} is not one of {sorted(allowed)}", raw=text)
    m = _SCORE_TEXT.search(text)
    if m and float(m.group(1)) in allowed:
        return float(m.group(1)), text.strip()[:2000]
    raise ParseError("no JSON object with a 'score' field in the answer", raw=text)
