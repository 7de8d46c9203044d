"""Reflection prompts (distil guidelines, resolve contradictions) and their answer parsing.

The prompt formats are tag-based (``<label n="3" expert_score="1" ...>``) so that the
offline fake reflection model (``judgealign.testing.reflection``) can read them back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from judgealign.providers.types import ChatRequest, Message
from judgealign.rubric.model import Dimension

GUIDELINES_TITLE = "guidelines"
RESOLUTION_TITLE = "resolution"

REFLECTION_SYSTEM = (
    "You study how expert reviewers apply a scoring rubric and write short, general "
    "guidelines that let another model score items exactly the way the experts do. "
    "Answer with a single JSON object and nothing else."
)

PARSE_REMINDER = (
    "Your previous answer could not be read. Reply with ONLY the JSON object described above."
)

LABEL_TAG = re.compile(
    r'<label n="(\d+)" expert_score="([^"]*)">\n(.*?)\n</label>',
    re.DOTALL,
)
GUIDELINE_TAG = re.compile(
    r'<guideline n="(\d+)" score="([^"]*)" support="(\d+)">(.*?)</guideline>', re.DOTALL
)


@dataclass(frozen=True)
class LabelView:
    """What reflection sees of one label: its id (never shown), score, justification."""

    id: str
    score: float
    rationale: str


@dataclass(frozen=True)
class DraftView:
    """A guideline as shown to the contradiction resolver."""

    text: str
    score: float | None
    support: int


def _fmt(score: float | None) -> str:
    if score is None:
        return ""
    return str(int(score)) if float(score).is_integer() else f"{score:.2f}"


def _clean(text: str) -> str:
    # A justification must not close its own tag early.
    return text.replace("</label>", "</ label>").replace("</guideline>", "</ guideline>").strip()


def render_dimension_brief(dimension: Dimension) -> str:
    lines = [f"Rubric dimension: {dimension.name} (id {dimension.id})", dimension.description]
    scale = dimension.scale
    lines.append("Scale:")
    lines += [f"- {lv}: {scale.anchors[lv]}" for lv in sorted(scale.anchors, reverse=True)]
    if scale.na_value is not None:
        lines.append(f"- {scale.na_value} (not applicable): {scale.na_description}")
    if dimension.guidance.strip():
        lines.append("What to look for: " + dimension.guidance.strip())
    return "\n".join(line for line in lines if line.strip())


def render_label(n: int, view: LabelView, rationale: str | None = None) -> str:
    body = _clean(view.rationale if rationale is None else rationale) or "(no justification)"
    return f'<label n="{n}" expert_score="{_fmt(view.score)}">\n{body}\n</label>'


# Per guideline, so that max_guidelines of them fit the answer budget (DISTIL_MAX_TOKENS):
# a 1.5B model cited all 96 labels of a batch for each of six guidelines, ran out of 1500
# tokens mid-array and lost every guideline of the batch (CoNaLa bench, every fold).
MAX_SOURCES_PER_GUIDELINE = 12
MAX_GUIDELINE_CHARS = 300  # "one or two sentences"
DISTIL_MAX_TOKENS = 1500


def guidelines_schema(max_guidelines: int = 12, n_labels: int = 50) -> dict[str, Any]:
    """Schema of a distillation answer; the caps stop a small model that would otherwise
    list source numbers 1, 2, 3, ... (or ramble) until it runs out of tokens.

    >>> item = guidelines_schema(6, 96)["properties"]["guidelines"]["items"]["properties"]
    >>> item["sources"]["maxItems"], item["text"]["maxLength"]
    (12, 300)
    """
    return {
        "title": GUIDELINES_TITLE,
        "type": "object",
        "properties": {
            "guidelines": {
                "type": "array",
                "maxItems": max_guidelines,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "maxLength": MAX_GUIDELINE_CHARS},
                        "score": {"type": ["integer", "null"]},
                        "sources": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "maxItems": max(1, min(n_labels, MAX_SOURCES_PER_GUIDELINE)),
                        },
                    },
                    "required": ["text", "score", "sources"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["guidelines"],
        "additionalProperties": False,
    }


def resolution_schema(n_drafts: int = 50) -> dict[str, Any]:
    """Schema of a conflict resolution answer: never more guidelines than came in."""
    n = max(1, n_drafts)
    return {
        "title": RESOLUTION_TITLE,
        "type": "object",
        "properties": {
            "guidelines": {
                "type": "array",
                "maxItems": n,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "maxLength": MAX_GUIDELINE_CHARS},
                        "score": {"type": ["integer", "null"]},
                        "from": {"type": "array", "items": {"type": "integer"}, "maxItems": n},
                    },
                    "required": ["text", "score", "from"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["guidelines"],
        "additionalProperties": False,
    }


def distil_header(dimension: Dimension) -> str:
    return (
        render_dimension_brief(dimension)
        + "\n\nBelow are expert verdicts on different items for this dimension: the expert's "
        "score and justification. Infer the criteria the experts actually "
        "apply, especially where they are stricter, more lenient or more specific than the "
        "rubric's wording, and when they consider the dimension not applicable."
    )


# Deliberately generic: small models copy the example, and a copied domain-specific example
# would pass for a real guideline (it did, with "imputation fitted before the split").
EXAMPLE_GUIDELINE = "<observable pattern in the item> -> score <N>."


def distil_footer(max_guidelines: int) -> str:
    return (
        f"Write at most {max_guidelines} guidelines. Each guideline:\n"
        "- is general: it never names a specific item, file, dataset, variable or label "
        "number, and never copies a justification;\n"
        "- is one or two sentences and actionable, stating the score it implies, in the form "
        f'"{EXAMPLE_GUIDELINE}";\n'
        '- gives that score in "score" (null if it implies none);\n'
        '- lists in "sources" the numbers n of the labels it is drawn from (at most '
        f"{MAX_SOURCES_PER_GUIDELINE}, the clearest cases).\n"
        'Answer with JSON: {"guidelines": [{"text": "...", "score": N, "sources": [n, ...]}]}'
    )


def distil_request(
    *,
    model: str,
    dimension: Dimension,
    blocks: Sequence[str],
    max_guidelines: int,
    seed: int,
    reminder: bool = False,
) -> ChatRequest:
    parts = [
        distil_header(dimension),
        "\n\n".join(blocks),
        distil_footer(max_guidelines),
    ]
    if reminder:
        parts.append(PARSE_REMINDER)
    return ChatRequest(
        model=model,
        messages=(
            Message(role="system", content=REFLECTION_SYSTEM),
            Message(role="user", content="\n\n".join(parts)),
        ),
        temperature=0.0,
        max_tokens=DISTIL_MAX_TOKENS,
        json_schema=guidelines_schema(max_guidelines, len(blocks)),
        seed=seed,
    )


def resolution_request(
    *,
    model: str,
    dimension: Dimension,
    drafts: Sequence[DraftView],
    seed: int,
    reminder: bool = False,
) -> ChatRequest:
    body = "\n".join(
        f'<guideline n="{n}" score="{_fmt(d.score)}" support="{d.support}">'
        f"{_clean(d.text)}</guideline>"
        for n, d in enumerate(drafts, 1)
    )
    parts = [
        render_dimension_brief(dimension),
        "These guidelines were distilled from expert verdicts; some may contradict each other "
        "(the same situation given different scores). support = how many expert labels back "
        "each one.",
        body,
        "Return a consistent set: keep guidelines that do not conflict unchanged; for a "
        "conflict keep the better-supported reading, or rewrite both into one guideline that "
        "states the condition that separates the scores. Never add new criteria. "
        '"from" lists the input numbers n each output guideline is based on.\n'
        'Answer with JSON: {"guidelines": [{"text": "...", "score": N, "from": [n, ...]}]}',
    ]
    if reminder:
        parts.append(PARSE_REMINDER)
    return ChatRequest(
        model=model,
        messages=(
            Message(role="system", content=REFLECTION_SYSTEM),
            Message(role="user", content="\n\n".join(parts)),
        ),
        temperature=0.0,
        max_tokens=DISTIL_MAX_TOKENS,
        json_schema=resolution_schema(len(drafts)),
        seed=seed,
    )


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def _json_candidates(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCE.finditer(text)]
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
    return found or [text]


def parse_entries(text: str, ref_key: str) -> list[tuple[str, float | None, list[int]]] | None:
    """``(text, score, refs)`` per entry of ``{"guidelines": [...]}``; None when unreadable.

    Lenient on form (prose around the JSON, string numbers), strict on shape.
    """
    for blob in _json_candidates(text):
        try:
            data = json.loads(blob)
        except ValueError:
            continue
        if not isinstance(data, dict) or not isinstance(data.get("guidelines"), list):
            continue
        out: list[tuple[str, float | None, list[int]]] = []
        for entry in data["guidelines"]:
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                continue
            refs: list[int] = []
            raw_refs = entry.get(ref_key)
            for r in raw_refs if isinstance(raw_refs, list) else []:
                try:
                    refs.append(int(str(r).strip().lstrip("#Ln")))
                except ValueError:
                    continue
            out.append((entry["text"], _as_score(entry.get("score")), refs))
        return out
    return None


def _as_score(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.search(r"-?\d+(?:\.\d+)?", value)
        return float(m.group(0)) if m else None
    return None
