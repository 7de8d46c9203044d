"""Deterministic, scriptable fake providers for tests, demos and offline dry runs.

Names resolve through the registry like any provider:

- ``fake:constant``: answers the middle of the allowed scores (``?score=N`` forces one);
- ``fake:lenient``: always the top score (the typical unaligned judge);
- ``fake:mimic``: copies the expert score of the first (most similar) example in the prompt,
  else falls back to ``?fallback=constant|lenient``; shows that episodic memory is used;
- ``fake:random``: a seeded random allowed score (``?seed=N``);
- ``fake:garbage``: unparseable text (exercises failure handling).

Reflection requests (distilling guidelines) are answered by ``judgealign.testing.reflection``.

>>> import asyncio
>>> from judgealign.providers.types import ChatRequest, Message
>>> llm = FakeLLM("constant")
>>> req = ChatRequest(model="x", messages=(Message(role="user", content="hi"),),
...                   json_schema=judgement_schema_for_test([1, 2, 3]))
>>> asyncio.run(llm.complete(req)).text
'{"rationale": "fake:constant picked the middle score.", "score": 2}'
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from judgealign.errors import ConfigError, ProviderError
from judgealign.providers.protocol import FloatMatrix
from judgealign.providers.types import ChatRequest, ChatResponse, Usage

Handler = Callable[[ChatRequest], "str | Exception"]

EXAMPLE_SCORE = re.compile(r"^Expert score:\s*(-?\d+(?:\.\d+)?)", re.MULTILINE)
MODES = ("constant", "lenient", "mimic", "random", "garbage", "script")


def allowed_scores(request: ChatRequest) -> list[int]:
    """The score enum of a judgement request's JSON schema (empty if none)."""
    schema = request.json_schema or {}
    score = schema.get("properties", {}).get("score", {})
    values = score.get("enum")
    if values is None:
        lo, hi = score.get("minimum"), score.get("maximum")
        values = list(range(int(lo), int(hi) + 1)) if lo is not None and hi is not None else []
    return [int(v) for v in values]


def judgement_schema_for_test(levels: Sequence[int]) -> dict[str, Any]:
    """A minimal judgement schema, for doctests and tests."""
    return {
        "title": "judgement",
        "type": "object",
        "properties": {"rationale": {"type": "string"}, "score": {"enum": list(levels)}},
        "required": ["rationale", "score"],
    }


def _estimate(text: str) -> int:
    return max(1, len(text) // 4)


class FakeLLM:
    """A scriptable LLM. ``calls`` records every request it answered.

    ``handler`` (request -> text or exception) overrides ``mode``; ``script`` is a list of
    answers (text or exceptions) consumed in order, then the mode's answer.
    """

    def __init__(
        self,
        mode: str = "constant",
        *,
        params: dict[str, str] | None = None,
        handler: Handler | None = None,
        script: Sequence[str | Exception] = (),
        delay: float = 0.0,
        name: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown fake mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.params = dict(params or {})
        self.handler = handler
        self.script = list(script)
        self.delay = delay
        self._name = name or f"fake:{mode}"
        self.calls: list[ChatRequest] = []

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer: str | Exception
        if self.script:
            answer = self.script.pop(0)
        elif self.handler is not None:
            answer = self.handler(request)
        else:
            answer = self._answer(request)
        if isinstance(answer, Exception):
            raise answer
        prompt = sum(_estimate(m.content) for m in request.messages)
        usage = Usage(prompt_tokens=prompt, completion_tokens=_estimate(answer), calls=1)
        probs = self._score_probs(request, answer)
        return ChatResponse(
            text=answer, model=self.name, usage=usage, finish_reason="stop", score_probs=probs
        )

    def _score_probs(self, request: ChatRequest, answer: str) -> dict[str, float] | None:
        if not request.score_choices:
            return None
        try:
            chosen = str(json.loads(answer)["score"])
        except (ValueError, KeyError, TypeError):
            return None
        if chosen not in request.score_choices:
            return None
        rest = (1.0 - 0.7) / max(1, len(request.score_choices) - 1)
        return {c: (0.7 if c == chosen else rest) for c in request.score_choices}

    def _answer(self, request: ChatRequest) -> str:
        title = (request.json_schema or {}).get("title", "")
        if title and title != "judgement":
            from judgealign.testing import reflection

            return reflection.answer(request)
        if self.mode == "garbage":
            return "I think this is pretty good overall, maybe a two or three?"
        levels = allowed_scores(request)
        if not levels:
            return "ok"
        score, why = self._pick(request, levels)
        return json.dumps({"rationale": why, "score": score})

    def _pick(self, request: ChatRequest, levels: list[int]) -> tuple[int, str]:
        applicable = [v for v in levels if v > 0] or levels
        if "score" in self.params:
            return int(self.params["score"]), "fake picked the fixed score."
        mode = self.mode
        if mode == "mimic":
            found = EXAMPLE_SCORE.search(request.messages[-1].content)
            if found and int(float(found.group(1))) in levels:
                return int(float(found.group(1))), "fake:mimic copied the closest expert example."
            mode = self.params.get("fallback", "lenient")
        if mode == "lenient":
            return max(applicable), "fake:lenient gave the top score."
        if mode == "random":
            text = "".join(m.content for m in request.messages) + self.params.get("seed", "0")
            digest = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
            return applicable[digest % len(applicable)], "fake:random picked a score."
        return applicable[(len(applicable) - 1) // 2], "fake:constant picked the middle score."


class FakeEmbedder:
    """Deterministic hashed bag-of-words embeddings: similar texts get similar vectors.

    >>> import asyncio
    >>> e = FakeEmbedder(dim=64)
    >>> v = asyncio.run(e.embed(["impute before split", "impute before split!"]))
    >>> float(v[0] @ v[1]) > 0.9
    True
    """

    def __init__(self, dim: int = 256, *, name: str = "fake") -> None:
        self.dim = dim
        self._name = name
        self.calls = 0
        self.texts_embedded = 0

    @property
    def name(self) -> str:
        return self._name

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"[a-z0-9_]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out


def fake_llm_factory(model: str, params: dict[str, str]) -> FakeLLM:
    """Registry factory for ``fake:MODE?param=value``."""
    return FakeLLM(model or "constant", params=params, name=f"fake:{model or 'constant'}")


def fake_embedder_factory(model: str, params: dict[str, str]) -> FakeEmbedder:
    dim = int(params.get("dim", "256"))
    return FakeEmbedder(dim=dim, name=f"fake:{model}" if model else "fake")


def failing(status: int = 500, *, transient: bool = True) -> ProviderError:
    """A provider error to put in a FakeLLM script."""
    return ProviderError(f"fake HTTP {status}", transient=transient, status=status)
