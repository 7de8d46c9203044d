"""A deterministic fake reflection model, so the whole alignment runs offline.

For ``guidelines`` requests it reads the labels back from the prompt and writes one
guideline per distinct (score, first clause of the justification), citing the label numbers.
For ``resolution`` requests it returns the guidelines unchanged, minus exact contradictions
(same wording apart from the score: the better-supported one stays).

>>> import json
>>> from judgealign.providers.types import ChatRequest, Message
>>> prompt = ('<label n="1" expert_score="1">\\n'
...           'The imputer in prep.py is fit on all rows. Bad.\\n</label>')
>>> req = ChatRequest(model="fake", messages=(Message(role="user", content=prompt),),
...                   json_schema={"title": "guidelines"})
>>> json.loads(answer(req))["guidelines"][0]["text"]
'Experts give 1 when: the imputer in is fit on all rows.'
"""

from __future__ import annotations

import json
import re
from typing import Any

from judgealign.memory.reflection_prompts import (
    GUIDELINE_TAG,
    GUIDELINES_TITLE,
    LABEL_TAG,
    RESOLUTION_TITLE,
)
from judgealign.providers.types import ChatRequest

# File names and paths are item-specific; a general guideline must not carry them.
_FILE = re.compile(r"\S+\.(?:ipynb|py|csv|json|txt|parquet|xlsx?|tsv|pkl|md)\b", re.IGNORECASE)
_PREFIX = re.compile(r"^Experts give -?\d+(?:\.\d+)? when: ")
_SCORE_WORDS = re.compile(r"(?:->|=>|:)?\s*score\s*(?:of\s*)?-?\d+(?:\.\d+)?", re.IGNORECASE)


def _score(text: str) -> int | float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def first_clause(rationale: str) -> str:
    """The first sentence of a justification, lowercased, without file names."""
    text = " ".join(rationale.split())
    sentence = re.split(r"(?<=[.!?;])\s+", text, maxsplit=1)[0] if text else ""
    sentence = _FILE.sub("", sentence)
    sentence = " ".join(sentence.split()).strip(" .;!?").lower()
    return sentence or "no justification is given"


def _guidelines(prompt: str) -> dict[str, Any]:
    groups: dict[tuple[str, str], list[int]] = {}
    for m in LABEL_TAG.finditer(prompt):
        key = (m.group(2), first_clause(m.group(3)))
        groups.setdefault(key, []).append(int(m.group(1)))
    out = [
        {"text": f"Experts give {score} when: {clause}.", "score": _score(score), "sources": ns}
        for (score, clause), ns in groups.items()
    ]
    return {"guidelines": out}


def _resolution(prompt: str) -> dict[str, Any]:
    found = [
        (int(m.group(1)), m.group(2), int(m.group(3)), m.group(4).strip())
        for m in GUIDELINE_TAG.finditer(prompt)
    ]

    def wording(text: str) -> str:
        # Only the stated score may differ; digits inside the condition are part of it.
        return _SCORE_WORDS.sub("", _PREFIX.sub("", text)).strip(" .").lower()

    drop: set[int] = set()
    for n, score, support, text in found:
        for n2, score2, support2, text2 in found:
            if (
                n != n2
                and score != score2
                and wording(text) == wording(text2)
                and ((support2, -n2) > (support, -n))
            ):
                drop.add(n)
    out = [
        {"text": text, "score": _score(score), "from": [n]}
        for n, score, _, text in found
        if n not in drop
    ]
    return {"guidelines": out}


def answer(request: ChatRequest) -> str:
    """The fake reflection model's answer (JSON text) to a reflection request."""
    title = (request.json_schema or {}).get("title", "")
    prompt = request.messages[-1].content if request.messages else ""
    if title == GUIDELINES_TITLE:
        return json.dumps(_guidelines(prompt))
    if title == RESOLUTION_TITLE:
        return json.dumps(_resolution(prompt))
    return json.dumps({})
