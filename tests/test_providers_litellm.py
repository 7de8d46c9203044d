"""LiteLLMProvider with a fake ``litellm`` module (the real extra is not installed in tests)."""

from __future__ import annotations

import math
import sys
import types
from typing import Any

import numpy as np
import pytest

from judgealign.errors import ConfigError, ProviderError
from judgealign.providers.litellm_provider import (
    LiteLLMEmbedder,
    LiteLLMProvider,
    map_litellm_error,
)
from judgealign.providers.registry import resolve_embedder, resolve_llm
from judgealign.providers.retry import ThrottledError
from judgealign.providers.types import ChatRequest, Message


class APIError(Exception):
    def __init__(self, message: str = "", status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class RateLimitError(APIError):
    pass


class Timeout(APIError):
    pass


class APIConnectionError(APIError):
    pass


class BadRequestError(APIError):
    pass


class ContextWindowExceededError(BadRequestError):
    pass


class AuthenticationError(APIError):
    pass


def fake_litellm(response: Any = None, error: Exception | None = None) -> types.ModuleType:
    mod = types.ModuleType("litellm")
    calls: list[dict[str, Any]] = []

    async def acompletion(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if error is not None:
            raise error
        return response

    async def aembedding(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return {"data": [{"embedding": [3.0, 4.0]} for _ in kwargs["input"]]}

    mod.acompletion = acompletion  # type: ignore[attr-defined]
    mod.aembedding = aembedding  # type: ignore[attr-defined]
    mod.calls = calls  # type: ignore[attr-defined]
    return mod


def req(**kw: Any) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message(role="user", content="rate"),), **kw)


SCHEMA = {"title": "judgement", "type": "object", "properties": {"score": {"enum": [1, 2]}}}


async def test_missing_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)
    with pytest.raises(ConfigError, match=r"pip install 'judgealign\[litellm\]'"):
        await LiteLLMProvider("anthropic/claude-3-5-haiku").complete(req())
    with pytest.raises(ConfigError, match=r"judgealign\[litellm\]"):
        resolve_embedder("litellm:text-embedding-3-small")


async def test_completion_and_kwargs(monkeypatch: pytest.MonkeyPatch) -> None:
    logprobs = {
        "content": [
            {"token": '{"score": ', "logprob": -0.1, "top_logprobs": []},
            {
                "token": "2",
                "logprob": math.log(0.8),
                "top_logprobs": [
                    {"token": "2", "logprob": math.log(0.8)},
                    {"token": "1", "logprob": math.log(0.2)},
                ],
            },
        ]
    }
    response = {
        "model": "anthropic/claude",
        "choices": [
            {
                "message": {"content": '{"score": 2}'},
                "finish_reason": "stop",
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3},
    }
    mod = fake_litellm(response)
    monkeypatch.setitem(sys.modules, "litellm", mod)
    llm = resolve_llm("litellm:anthropic/claude", retries=0)
    resp = await llm.complete(req(json_schema=SCHEMA, seed=5, score_choices=("1", "2")))
    assert resp.text == '{"score": 2}' and resp.model == "anthropic/claude"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (12, 3)
    assert resp.score_probs == pytest.approx({"1": 0.2, "2": 0.8})
    (kw,) = mod.calls  # type: ignore[attr-defined]
    assert kw["model"] == "anthropic/claude" and kw["seed"] == 5
    assert kw["messages"] == [{"role": "user", "content": "rate"}]
    assert kw["response_format"]["type"] == "json_schema"
    assert kw["response_format"]["json_schema"]["schema"] == SCHEMA
    assert kw["logprobs"] is True and kw["drop_params"] is True


async def test_errors_are_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", fake_litellm(error=Timeout("slow")))
    with pytest.raises(ProviderError) as info:
        await LiteLLMProvider("m").complete(req())
    assert info.value.transient and "Timeout" in str(info.value)
    monkeypatch.setitem(sys.modules, "litellm", fake_litellm(response={"choices": []}))
    with pytest.raises(ProviderError, match="no choices"):
        await LiteLLMProvider("m").complete(req())


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (RateLimitError("429", status_code=429), True),
        (Timeout("t"), True),
        (APIConnectionError("down"), True),
        (APIError("oops", status_code=503), True),
        (AuthenticationError("key", status_code=401), False),
        (BadRequestError("bad", status_code=400), False),
        (ContextWindowExceededError("too long", status_code=400), False),
        (APIError("odd", status_code=404), False),
        (ValueError("unknown"), False),
    ],
)
def test_error_mapping(error: Exception, transient: bool) -> None:
    mapped = map_litellm_error(error, "litellm:m")
    assert mapped.transient is transient
    assert mapped.status == getattr(error, "status_code", None)
    assert isinstance(mapped, ThrottledError) == isinstance(error, RateLimitError)


async def test_litellm_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", fake_litellm())
    out = await LiteLLMEmbedder("e").embed(["a", "b"])
    assert out.shape == (2, 2) and np.allclose(out[0], [0.6, 0.8])
