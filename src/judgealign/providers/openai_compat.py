"""Providers for any server speaking the OpenAI HTTP API (OpenAI, vLLM, llama.cpp, Ollama...).

``httpx`` against ``POST {base_url}/chat/completions`` and ``/embeddings`` directly, so no SDK
is needed. Structured output degrades gracefully: ``json_schema`` -> ``json_object`` with the
schema (what llama.cpp's server wants) -> no ``response_format``; the first mode the server
accepts is remembered for the life of the object.

>>> llm = OpenAICompatibleLLM("qwen", base_url="http://127.0.0.1:8080/v1", json_mode="json_object")
>>> llm.name
'openai:qwen'
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any, Literal

import httpx
import numpy as np

from judgealign.errors import ConfigError, ProviderError
from judgealign.providers.protocol import DEFAULT_ATTEMPT_TIMEOUT, FloatMatrix
from judgealign.providers.retry import ThrottledError
from judgealign.providers.types import ChatRequest, ChatResponse, Usage
from judgealign.redaction import redact

JsonMode = Literal["json_schema", "json_object", "none"]
JSON_MODES: tuple[JsonMode, ...] = ("json_schema", "json_object", "none")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
SCORE_KEY = re.compile(r'"score"\s*:\s*"?')
_STRIP = " \t\n\"'"


def default_base_url() -> str:
    return (
        os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE") or (DEFAULT_BASE_URL)
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpJsonClient:
    """POSTs JSON and maps every failure to ``ProviderError`` (one httpx client per loop)."""

    def __init__(self, base_url: str, api_key: str | None, timeout: float, who: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.who = who
        self._lock = threading.Lock()
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]
        self._clients = weakref.WeakKeyDictionary()

    def _client(self) -> httpx.AsyncClient:
        # An AsyncClient's pool belongs to one event loop; callers may run several loops.
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
                client = httpx.AsyncClient(
                    headers=headers, timeout=httpx.Timeout(self.timeout), limits=limits
                )
                self._clients[loop] = client
            return client

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    async def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            resp = await self._client().post(url, json=payload)
        except httpx.TimeoutException:
            raise ProviderError(
                f"{self.who}: {url} timed out after {self.timeout:g}s; raise timeout= "
                "or check the server",
                transient=True,
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as err:
            # Reached, but the answer broke off (a proxy or server dropped the connection).
            raise ProviderError(
                f"{self.who}: {url} broke off its answer ({type(err).__name__}: {err})",
                transient=True,
            ) from None
        except httpx.HTTPError as err:
            raise ProviderError(
                f"{self.who}: cannot reach {url} ({type(err).__name__}: {err}); is the server "
                "running and base_url right?",
                transient=True,
            ) from None
        status = resp.status_code
        if status != 200:
            raise self._status_error(url, resp)
        try:
            body = resp.json()
        except ValueError:
            raise ProviderError(
                f"{self.who}: {url} returned a malformed JSON body: "
                f"{redact(resp.text, [self.api_key])[:200]!r}",
                transient=True,
                status=status,
            ) from None
        if not isinstance(body, dict):
            raise ProviderError(
                f"{self.who}: {url} returned JSON that is not an object: "
                f"{redact(resp.text, [self.api_key])[:200]!r}",
                transient=True,
                status=status,
            )
        return body

    def _status_error(self, url: str, resp: httpx.Response) -> ProviderError:
        status = resp.status_code
        # Redact before cutting, so a key straddling the cut cannot survive half-masked.
        detail = redact(" ".join(resp.text.split()), [self.api_key])[:300]
        msg = f"{self.who}: HTTP {status} from {url}: {detail}"
        retry_after = _retry_after(resp.headers.get("Retry-After"))
        if status == 429 or (status == 503 and retry_after is not None):
            return ThrottledError(msg, retry_after=retry_after, status=status)
        if status in (408, 409) or status >= 500:
            return ProviderError(msg, transient=True, status=status)
        if status in (401, 403):
            msg += " (set OPENAI_API_KEY, or api_key_env= in the model name)"
        return ProviderError(msg, transient=False, status=status)


def strict_compatible(schema: Any) -> bool:
    """Whether OpenAI's strict mode would accept ``schema`` (closed objects, all required)."""
    if isinstance(schema, dict):
        props = schema.get("properties")
        if isinstance(props, dict):
            if schema.get("additionalProperties") is not False:
                return False
            if set(schema.get("required", [])) != set(props):
                return False
        return all(strict_compatible(v) for v in schema.values())
    if isinstance(schema, list):
        return all(strict_compatible(v) for v in schema)
    return True


def score_probs_from_logprobs(
    content: Sequence[dict[str, Any]], choices: Sequence[str]
) -> dict[str, float] | None:
    """Probability of each choice at the first generated token that is one of them.

    The search starts after a ``"score":`` key when the text has one, so a digit inside the
    rationale is not mistaken for the score. ``top_logprobs`` at that position are
    renormalized over the choices.
    """
    tokens = [str(t.get("token", "")) for t in content]
    text = "".join(tokens)
    start_char = 0
    found = SCORE_KEY.search(text)
    if found:
        start_char = found.end()
    offset = 0
    wanted = set(choices)
    for n, (entry, token) in enumerate(zip(content, tokens, strict=True)):
        offset += len(token)
        if offset <= start_char or token.strip(_STRIP) not in wanted:
            continue
        if n + 1 < len(tokens) and tokens[n + 1][:1].isdigit():
            # The number goes on ("1" then "0"): this position cannot tell 1 from 10, so
            # its probabilities would be misread; the answered score stands instead.
            return None
        mass = dict.fromkeys(choices, 0.0)
        alts = entry.get("top_logprobs") or [{"token": token, "logprob": entry.get("logprob", 0)}]
        for alt in alts:
            key = str(alt.get("token", "")).strip(_STRIP)
            if key in mass:
                mass[key] += math.exp(float(alt.get("logprob", -math.inf)))
        total = sum(mass.values())
        if total <= 0:
            return None
        return {c: p / total for c, p in mass.items()}
    return None


def _estimate_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class OpenAICompatibleLLM:
    """Chat completions over the OpenAI wire format.

    ``api_key`` defaults to ``OPENAI_API_KEY`` (none is fine for local servers: no auth header
    is sent); ``base_url`` to ``OPENAI_BASE_URL`` / ``OPENAI_API_BASE``.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        json_mode: JsonMode = "json_schema",
        *,
        provider: str = "openai",
        attempt_timeout: float | None = DEFAULT_ATTEMPT_TIMEOUT,
    ) -> None:
        if json_mode not in JSON_MODES:
            raise ConfigError(f"json_mode={json_mode!r} is invalid; use one of {JSON_MODES}")
        self.model = model
        self.base_url = base_url or default_base_url()
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self.json_mode: JsonMode = json_mode
        self.logprobs_supported = True
        self._name = f"{provider}:{model}"
        self._http = HttpJsonClient(self.base_url, self.api_key, timeout, self._name)

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        """Close this event loop's connection pool."""
        await self._http.aclose()

    def payload(self, request: ChatRequest, mode: JsonMode, logprobs: bool) -> dict[str, Any]:
        """The request body sent for ``request`` in structured-output ``mode``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
        }
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.seed is not None:
            body["seed"] = request.seed
        schema = request.json_schema
        if schema is not None and mode == "json_schema":
            title = str(schema.get("title") or "response")
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": re.sub(r"[^A-Za-z0-9_-]", "_", title)[:64],
                    "schema": schema,
                    "strict": strict_compatible(schema),
                },
            }
        elif schema is not None and mode == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        if logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = 20
        return body

    async def complete(self, request: ChatRequest) -> ChatResponse:
        start = time.perf_counter()
        while True:
            mode = self.json_mode
            logprobs = bool(request.score_choices) and self.logprobs_supported
            try:
                body = await self._http.post(
                    "/chat/completions", self.payload(request, mode, logprobs)
                )
                break
            except ProviderError as err:
                if not self._degrade(err, request, mode, logprobs):
                    raise
        return self._response(body, request, time.perf_counter() - start)

    def _degrade(self, err: ProviderError, request: ChatRequest, mode: JsonMode, lp: bool) -> bool:
        """After a 400 that blames a feature, drop that feature for the session."""
        if err.status != 400:
            return False
        text = str(err).lower()
        if (
            request.json_schema is not None
            and mode != "none"
            and ("response_format" in text or "json_schema" in text or "json_object" in text)
        ):
            if self.json_mode == mode:  # another task may already have degraded it
                self.json_mode = JSON_MODES[JSON_MODES.index(mode) + 1]
            return True
        if lp and "logprobs" in text:
            self.logprobs_supported = False
            return True
        return False

    def _response(self, body: dict[str, Any], request: ChatRequest, seconds: float) -> ChatResponse:
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ProviderError(
                f"{self.name}: answer has no choices: {json.dumps(body)[:200]}", transient=True
            )
        choice = choices[0]
        message = choice.get("message") or {}
        text = message.get("content") if isinstance(message, dict) else None
        if not isinstance(text, str):
            raise ProviderError(
                f"{self.name}: answer has no message content: {json.dumps(choice)[:200]}",
                transient=True,
            )
        raw_usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
        if raw_usage and isinstance(raw_usage.get("prompt_tokens"), int):
            prompt = int(raw_usage["prompt_tokens"])
            completion = int(raw_usage.get("completion_tokens") or 0)
        else:  # servers that omit usage: a rough chars/4 estimate beats zero
            prompt = sum(_estimate_tokens(m.content) for m in request.messages)
            completion = _estimate_tokens(text)
        probs = None
        lp = choice.get("logprobs")
        if request.score_choices and isinstance(lp, dict) and isinstance(lp.get("content"), list):
            probs = score_probs_from_logprobs(lp["content"], request.score_choices)
        return ChatResponse(
            text=text,
            model=str(body.get("model") or self.model),
            usage=Usage(
                prompt_tokens=prompt, completion_tokens=completion, calls=1, seconds=seconds
            ),
            finish_reason=choice.get("finish_reason"),
            score_probs=probs,
        )


class OpenAICompatibleEmbedder:
    """Embeddings over ``POST {base_url}/embeddings``; rows float32 and L2-normalized."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        *,
        provider: str = "openai",
        attempt_timeout: float | None = DEFAULT_ATTEMPT_TIMEOUT,
    ) -> None:
        self.model = model
        self.base_url = base_url or default_base_url()
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.timeout = timeout
        self.attempt_timeout = attempt_timeout
        self._name = f"{provider}:{model}"
        self._http = HttpJsonClient(self.base_url, self.api_key, timeout, self._name)

    @property
    def name(self) -> str:
        return self._name

    async def aclose(self) -> None:
        await self._http.aclose()

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        body = await self._http.post("/embeddings", {"model": self.model, "input": list(texts)})
        data = body.get("data")
        if not isinstance(data, list) or len(data) != len(texts):
            got = len(data) if isinstance(data, list) else "no"
            raise ProviderError(
                f"{self.name}: asked for {len(texts)} embeddings, got {got}", transient=True
            )
        try:
            ordered = sorted(data, key=lambda d: int(d.get("index", 0)))
            rows = np.asarray([d["embedding"] for d in ordered], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as err:
            raise ProviderError(
                f"{self.name}: malformed embeddings ({err})", transient=True
            ) from None
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        out: FloatMatrix = (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        return out
