"""Any model LiteLLM can reach (Anthropic, Bedrock, Vertex, ...), via ``litellm:<model>``.

``litellm`` is an optional extra, imported only when a call is made.

>>> LiteLLMProvider("anthropic/claude-3-5-haiku").name
'litellm:anthropic/claude-3-5-haiku'
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from judgealign.errors import ConfigError, ProviderError
from judgealign.providers.openai_compat import score_probs_from_logprobs, strict_compatible
from judgealign.providers.protocol import DEFAULT_ATTEMPT_TIMEOUT, FloatMatrix
from judgealign.providers.retry import ThrottledError
from judgealign.providers.types import ChatRequest, ChatResponse, Usage

INSTALL_HINT = "the litellm provider needs: pip install 'judgealign[litellm]'"

# litellm's exception classes by name, so the mapping needs no import at module load.
TRANSIENT = {
    "RateLimitError",
    "Timeout",
    "APIConnectionError",
    "ServiceUnavailableError",
    "InternalServerError",
    "BadGatewayError",
}
PERMANENT = {
    "AuthenticationError",
    "PermissionDeniedError",
    "BadRequestError",
    "NotFoundError",
    "ContextWindowExceededError",
    "ContentPolicyViolationError",
    "UnsupportedParamsError",
    "UnprocessableEntityError",
}


def import_litellm() -> ModuleType:
    try:
        return importlib.import_module("litellm")
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None


def map_litellm_error(err: Exception, who: str) -> ProviderError:
    """Turn a litellm exception into ``ProviderError`` with the right ``transient`` flag."""
    names = {cls.__name__ for cls in type(err).__mro__}
    status = getattr(err, "status_code", None)
    status = status if isinstance(status, int) else None
    msg = f"{who}: {type(err).__name__}: {' '.join(str(err).split())[:300]}"
    if "RateLimitError" in names:
        retry_after = getattr(err, "retry_after", None)
        ra = float(retry_after) if isinstance(retry_after, int | float) else None
        return ThrottledError(msg, retry_after=ra, status=status or 429)
    # Subclasses first: ContextWindowExceededError is a BadRequestError, Timeout may be an
    # APIConnectionError; the permanent check must not be shadowed by a transient parent.
    if names & PERMANENT:
        return ProviderError(msg, transient=False, status=status)
    if names & TRANSIENT or isinstance(err, TimeoutError | ConnectionError):
        return ProviderError(msg, transient=True, status=status)
    if status is not None:
        return ProviderError(msg, transient=status in (408, 409) or status >= 500, status=status)
    return ProviderError(msg, transient=False, status=status)


def _get(obj: Any, key: str, default: Any = None) -> Any:
    """litellm objects allow both attribute and item access; plain dicts only the latter."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        out = dump()
        if isinstance(out, dict):
            return out
    return {"token": _get(obj, "token"), "logprob": _get(obj, "logprob", 0.0)}


class LiteLLMProvider:
    """Chat completions through ``litellm.acompletion``."""

    def __init__(
        self,
        model: str,
        *,
        timeout: float = 120.0,
        json_schema: bool = True,
        attempt_timeout: float | None = DEFAULT_ATTEMPT_TIMEOUT,
    ) -> None:
        self.attempt_timeout = attempt_timeout
        self.model = model
        self.timeout = timeout
        self.json_schema = json_schema

    @property
    def name(self) -> str:
        return f"litellm:{self.model}"

    def kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """Arguments passed to ``litellm.acompletion`` for ``request``."""
        kw: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "timeout": self.timeout,
        }
        if request.max_tokens is not None:
            kw["max_tokens"] = request.max_tokens
        if request.seed is not None:
            kw["seed"] = request.seed
        schema = request.json_schema
        if schema is not None and self.json_schema:
            kw["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": str(schema.get("title") or "response"),
                    "schema": schema,
                    "strict": strict_compatible(schema),
                },
            }
        if request.score_choices:
            kw["logprobs"] = True
            kw["top_logprobs"] = 20
        return kw

    async def complete(self, request: ChatRequest) -> ChatResponse:
        litellm = import_litellm()
        start = time.perf_counter()
        try:
            # drop_params: providers without seed/logprobs support ignore them instead of failing
            resp = await litellm.acompletion(**self.kwargs(request), drop_params=True)
        except Exception as err:
            raise map_litellm_error(err, self.name) from err
        choices = _get(resp, "choices") or []
        if not choices:
            raise ProviderError(f"{self.name}: answer has no choices", transient=True)
        choice = choices[0]
        text = _get(_get(choice, "message"), "content")
        if not isinstance(text, str):
            raise ProviderError(f"{self.name}: answer has no message content", transient=True)
        usage = _get(resp, "usage")
        prompt = _get(usage, "prompt_tokens") if usage is not None else None
        completion = _get(usage, "completion_tokens") if usage is not None else None
        if not isinstance(prompt, int):
            prompt = sum(max(1, len(m.content) // 4) for m in request.messages)
            completion = max(1, len(text) // 4)
        probs = None
        content = _get(_get(choice, "logprobs"), "content")
        if request.score_choices and isinstance(content, list):
            probs = score_probs_from_logprobs([_as_dict(c) for c in content], request.score_choices)
        return ChatResponse(
            text=text,
            model=str(_get(resp, "model") or self.model),
            usage=Usage(
                prompt_tokens=prompt,
                completion_tokens=int(completion or 0),
                calls=1,
                seconds=time.perf_counter() - start,
            ),
            finish_reason=_get(choice, "finish_reason"),
            score_probs=probs,
        )


class LiteLLMEmbedder:
    """Embeddings through ``litellm.aembedding``; rows float32 and L2-normalized."""

    def __init__(
        self,
        model: str,
        *,
        timeout: float = 120.0,
        attempt_timeout: float | None = DEFAULT_ATTEMPT_TIMEOUT,
    ) -> None:
        self.attempt_timeout = attempt_timeout
        self.model = model
        self.timeout = timeout

    @property
    def name(self) -> str:
        return f"litellm:{self.model}"

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        litellm = import_litellm()
        try:
            resp = await litellm.aembedding(
                model=self.model, input=list(texts), timeout=self.timeout
            )
        except Exception as err:
            raise map_litellm_error(err, self.name) from err
        data = _get(resp, "data") or []
        if len(data) != len(texts):
            raise ProviderError(
                f"{self.name}: asked for {len(texts)} embeddings, got {len(data)}", transient=True
            )
        rows = np.asarray([_get(d, "embedding") for d in data], dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        out: FloatMatrix = (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        return out
