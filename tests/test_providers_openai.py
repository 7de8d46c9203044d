"""Contract tests of OpenAICompatibleLLM against the local OpenAI-compatible test server."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from judgealign.errors import ProviderError
from judgealign.providers.accounting import AccountingLLM
from judgealign.providers.openai_compat import (
    OpenAICompatibleLLM,
    score_probs_from_logprobs,
    strict_compatible,
)
from judgealign.providers.retry import RetryingLLM, ThrottledError
from judgealign.providers.types import ChatRequest, Message
from judgealign.testing.server import (
    Answer,
    Delay,
    HttpError,
    Malformed,
    OpenAICompatServer,
    RejectJsonSchema,
)

SCHEMA = {
    "title": "judgement",
    "type": "object",
    "properties": {"rationale": {"type": "string"}, "score": {"enum": [1, 2, 3]}},
    "required": ["rationale", "score"],
}


def request(text: str = "rate this", **kw: object) -> ChatRequest:
    msgs = (Message(role="system", content="You are a judge."), Message(role="user", content=text))
    return ChatRequest(model="judge", messages=msgs, **kw)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer() as srv:
        yield srv


def llm_for(srv: OpenAICompatServer, **kw: object) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM("test-model", base_url=srv.base_url, timeout=2.0, **kw)  # type: ignore[arg-type]


def fast_retry(inner: OpenAICompatibleLLM, **kw: object) -> RetryingLLM:
    return RetryingLLM(inner, retries=3, base_delay=0.001, max_delay=0.01, **kw)  # type: ignore[arg-type]


async def test_happy_path_request_body_and_usage(server: OpenAICompatServer) -> None:
    server.replies = [Answer('{"rationale": "fine", "score": 3}', prompt_tokens=40)]
    resp = await llm_for(server).complete(request(json_schema=SCHEMA, seed=7, temperature=0.2))
    assert resp.text == '{"rationale": "fine", "score": 3}'
    assert resp.usage.prompt_tokens == 40 and resp.usage.completion_tokens == 7
    assert resp.usage.calls == 1 and not resp.cached
    assert resp.finish_reason == "stop"
    (body,) = server.chat_requests
    assert body["model"] == "test-model"
    assert body["messages"] == [
        {"role": "system", "content": "You are a judge."},
        {"role": "user", "content": "rate this"},
    ]
    assert body["seed"] == 7 and body["temperature"] == 0.2 and body["max_tokens"] == 512
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "judgement"
    assert fmt["json_schema"]["schema"] == SCHEMA
    assert fmt["json_schema"]["strict"] is False  # open object: OpenAI strict mode would reject
    assert "logprobs" not in body
    assert "Authorization" not in server.requests[0].headers


async def test_api_key_sent_as_bearer(server: OpenAICompatServer) -> None:
    await llm_for(server, api_key="sk-test").complete(request())
    assert server.requests[0].headers["Authorization"] == "Bearer sk-test"
    assert "response_format" not in server.chat_requests[0]


async def test_env_defaults(monkeypatch: pytest.MonkeyPatch, server: OpenAICompatServer) -> None:
    monkeypatch.setenv("OPENAI_API_BASE", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    llm = OpenAICompatibleLLM("m")
    assert llm.base_url == server.base_url
    await llm.complete(request())
    assert server.requests[0].headers["Authorization"] == "Bearer sk-env"


async def test_missing_usage_is_estimated(server: OpenAICompatServer) -> None:
    server.replies = [Answer("x" * 40, usage=False)]
    resp = await llm_for(server).complete(request("y" * 80))
    assert resp.usage.completion_tokens == 10
    assert resp.usage.prompt_tokens == len("You are a judge.") // 4 + 20


async def test_500_then_success_is_retried(server: OpenAICompatServer) -> None:
    server.replies = [HttpError(500), HttpError(502), Answer("ok")]
    resp = await fast_retry(llm_for(server)).complete(request())
    assert resp.text == "ok"
    assert len(server.chat_requests) == 3


async def test_500_is_transient_with_status(server: OpenAICompatServer) -> None:
    server.replies = [HttpError(503, "overloaded")]
    with pytest.raises(ProviderError) as info:
        await llm_for(server).complete(request())
    assert info.value.transient and info.value.status == 503
    assert "overloaded" in str(info.value)


async def test_429_honours_retry_after(server: OpenAICompatServer) -> None:
    server.replies = [HttpError(429, "slow down", retry_after=1.5), Answer("ok")]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    resp = await fast_retry(llm_for(server), sleep=sleep).complete(request())
    assert resp.text == "ok"
    assert slept == [1.5]


async def test_429_maps_to_throttled_error(server: OpenAICompatServer) -> None:
    server.replies = [HttpError(429, retry_after=3)]
    with pytest.raises(ThrottledError) as info:
        await llm_for(server).complete(request())
    assert info.value.transient and info.value.status == 429 and info.value.retry_after == 3.0


async def test_4xx_is_permanent_and_not_retried(server: OpenAICompatServer) -> None:
    server.replies = [HttpError(401, "bad key"), Answer("never")]
    with pytest.raises(ProviderError) as info:
        await fast_retry(llm_for(server)).complete(request())
    assert not info.value.transient and info.value.status == 401
    assert "OPENAI_API_KEY" in str(info.value)
    assert len(server.chat_requests) == 1


async def test_timeout_is_transient_and_retried(server: OpenAICompatServer) -> None:
    server.replies = [Delay(2.0), Answer("late but fine")]
    llm = OpenAICompatibleLLM("m", base_url=server.base_url, timeout=0.2)
    with pytest.raises(ProviderError) as info:
        await llm.complete(request())
    assert info.value.transient and "timed out" in str(info.value)
    server.replies = [Delay(2.0), Answer("second time lucky")]
    resp = await fast_retry(llm).complete(request())
    assert resp.text == "second time lucky"


async def test_retrying_timeout_bounds_each_attempt(server: OpenAICompatServer) -> None:
    server.replies = [Delay(2.0), Answer("ok")]
    retrying = RetryingLLM(llm_for(server), retries=1, base_delay=0.001, timeout=0.2)
    assert (await retrying.complete(request())).text == "ok"


async def test_malformed_body_is_transient_and_counted(server: OpenAICompatServer) -> None:
    server.replies = [Malformed(), Malformed('{"id": "x"}')]
    llm = AccountingLLM(llm_for(server))
    with pytest.raises(ProviderError, match="malformed JSON") as info:
        await llm.complete(request())
    assert info.value.transient
    with pytest.raises(ProviderError, match="no choices"):
        await llm.complete(request())
    assert llm.failures == 2 and llm.usage.calls == 0


async def test_connection_refused_is_transient() -> None:
    with OpenAICompatServer() as srv:
        url = srv.base_url
    llm = OpenAICompatibleLLM("m", base_url=url, timeout=1.0)
    with pytest.raises(ProviderError, match="cannot reach") as info:
        await llm.complete(request())
    assert info.value.transient


async def test_json_schema_rejection_falls_back_to_json_object(
    server: OpenAICompatServer,
) -> None:
    server.replies = [RejectJsonSchema(Answer('{"rationale": "r", "score": 1}'))]
    llm = llm_for(server)
    resp = await llm.complete(request(json_schema=SCHEMA))
    assert resp.text.endswith('"score": 1}')
    first, second = server.chat_requests
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert llm.json_mode == "json_object"
    await llm.complete(request("again", json_schema=SCHEMA))
    assert len(server.chat_requests) == 3  # the working mode is remembered
    assert server.chat_requests[2]["response_format"]["type"] == "json_object"


async def test_json_object_rejection_falls_back_to_plain(server: OpenAICompatServer) -> None:
    reject = HttpError(400, "unknown field response_format")
    server.replies = [reject, reject, Answer("plain")]
    llm = llm_for(server)
    assert (await llm.complete(request(json_schema=SCHEMA))).text == "plain"
    assert [("response_format" in b) for b in server.chat_requests] == [True, True, False]
    assert llm.json_mode == "none"


def _logprob_answer() -> Answer:
    alts = [("2", math.log(0.6)), ("3", math.log(0.3)), ("1", math.log(0.1)), ("x", -9.0)]
    tokens = [
        ('{"', [('{"', -0.01)]),
        ("rationale", [("rationale", -0.01)]),
        ('":"', [('":"', -0.01)]),
        ("only", [("only", -0.01)]),
        (" 1", [(" 1", -0.5), (" 3", -1.0)]),  # a digit in the rationale, not the score
        (" flaw", [(" flaw", -0.01)]),
        ('","', [('","', -0.01)]),
        ("score", [("score", -0.01)]),
        ('":', [('":', -0.01)]),
        ("2", alts),
        ("}", [("}", -0.01)]),
    ]
    return Answer('{"rationale":"only 1 flaw","score":2}', logprobs=tokens)


async def test_logprobs_give_score_probs(server: OpenAICompatServer) -> None:
    server.replies = [_logprob_answer()]
    resp = await llm_for(server).complete(
        request(json_schema=SCHEMA, score_choices=("1", "2", "3"))
    )
    body = server.chat_requests[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 20
    assert resp.score_probs is not None
    assert resp.score_probs == pytest.approx({"1": 0.1, "2": 0.6, "3": 0.3}, rel=1e-6)


async def test_server_ignoring_logprobs_leaves_score_probs_none(
    server: OpenAICompatServer,
) -> None:
    resp = await llm_for(server).complete(request(score_choices=("1", "2", "3")))
    assert resp.score_probs is None


def test_score_probs_without_score_key_uses_first_choice_token() -> None:
    content = [
        {"token": '"', "logprob": -0.1, "top_logprobs": []},
        {
            "token": "3",
            "logprob": math.log(0.5),
            "top_logprobs": [
                {"token": "3", "logprob": math.log(0.5)},
                {"token": " 1", "logprob": math.log(0.5)},
            ],
        },
    ]
    assert score_probs_from_logprobs(content, ["1", "2", "3"]) == pytest.approx(
        {"1": 0.5, "2": 0.0, "3": 0.5}
    )
    assert score_probs_from_logprobs([{"token": "x", "logprob": 0.0}], ["1"]) is None


def test_strict_compatible() -> None:
    closed = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert strict_compatible(closed)
    assert not strict_compatible(SCHEMA)


def test_a_score_split_over_digit_tokens_gives_no_probabilities() -> None:
    # '{"score": 10' as a digit-splitting tokenizer emits it: the "1" position is ambiguous.
    content = [
        {"token": '{"score":', "logprob": 0.0},
        {"token": " 1", "logprob": 0.0, "top_logprobs": [{"token": " 1", "logprob": 0.0}]},
        {"token": "0", "logprob": 0.0},
        {"token": ",", "logprob": 0.0},
    ]
    choices = [str(v) for v in range(26)]
    assert score_probs_from_logprobs(content, choices) is None
    one = [content[0], content[1], {"token": ",", "logprob": 0.0}]
    assert score_probs_from_logprobs(one, choices) == pytest.approx(
        {c: float(c == "1") for c in choices}
    )
