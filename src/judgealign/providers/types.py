"""Request/response types shared by every LLM and embedding provider."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """Everything that decides an answer; its hash is the cache key.

    ``score_choices``: when set, the caller wants the probability of each of these strings as
    the first token of the ``score`` value (providers that expose log-probabilities fill
    ``ChatResponse.score_probs``; the others ignore it).
    """

    model_config = ConfigDict(frozen=True)

    model: str
    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int | None = 512
    json_schema: dict[str, Any] | None = None
    seed: int | None = 0
    score_choices: tuple[str, ...] | None = None
    # Free-form tag that separates otherwise identical requests in the cache (e.g. a sample
    # index when drawing several answers at temperature > 0).
    tag: str = ""

    def cache_key(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    @property
    def prompt_chars(self) -> int:
        return sum(len(m.content) for m in self.messages)

    @property
    def estimated_prompt_tokens(self) -> int:
        """The messages' size by ``render.tokens.estimate_tokens`` (pessimistic, no tokenizer)."""
        from judgealign.render.tokens import estimate_tokens

        return sum(estimate_tokens(m.content) for m in self.messages)


class Usage(BaseModel):
    """Token, call and time accounting; ``+`` adds two usages.

    ``prompt_tokens``/``completion_tokens``/``calls`` are what was spent now; answers served
    from the cache count in ``cached_calls`` and ``cached_*_tokens`` (what they cost when
    first answered), so a rerun is free yet the experiment's full cost stays known.

    >>> spent = Usage(prompt_tokens=5, calls=1)
    >>> (spent + Usage(cached_calls=1, cached_prompt_tokens=5)).all_prompt_tokens
    10
    """

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    cached_calls: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{f: getattr(self, f) + getattr(other, f) for f in Usage.model_fields})

    def __sub__(self, other: Usage) -> Usage:
        return Usage(**{f: getattr(self, f) - getattr(other, f) for f in Usage.model_fields})

    @property
    def all_prompt_tokens(self) -> int:
        """Prompt tokens spent now plus those of answers served from the cache."""
        return self.prompt_tokens + self.cached_prompt_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    cached: bool = False
    finish_reason: str | None = None
    # choice string -> probability (renormalized over the choices), when asked and available
    score_probs: dict[str, float] | None = None
