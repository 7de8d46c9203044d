"""An OpenAI-compatible HTTP endpoint on loopback, backed by any judgealign LLM and Embedder.

Other tools (MLflow's MemAlign through LiteLLM, an OpenAI SDK, curl) can then use a model that
judgealign runs in-process, e.g. the local llama.cpp model. Routes:

- ``POST /v1/chat/completions``: ``messages``, ``temperature``, ``max_tokens`` (or
  ``max_completion_tokens``), ``seed`` and ``response_format`` (``json_schema``, or
  ``json_object`` with an optional ``schema``; both become ``ChatRequest.json_schema``);
- ``POST /v1/embeddings``: ``input`` as a string or a list of strings;
- ``GET /v1/models``; ``GET /v1/stats``: calls and tokens served so far (not OpenAI; for
  benchmarks, which see every request here).

Only the standard library serves HTTP (through ``judgealign.http_base``); one asyncio loop in
a background thread drives the providers, so a ``LocalLLM`` still serializes its calls while
clients may connect at once.

>>> with ModelServer("fake:constant", "fake") as srv:  # doctest: +SKIP
...     srv.base_url
'http://127.0.0.1:40123/v1'
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from collections.abc import Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field

from judgealign.errors import ConfigError, JudgeAlignError, ProviderError
from judgealign.http_base import BodyTooLarge, JSONHandler, LoopbackService
from judgealign.providers.protocol import LLM, Embedder
from judgealign.providers.types import ChatRequest, ChatResponse, Message, Usage
from judgealign.render.tokens import estimate_tokens

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


class BadRequest(ValueError):
    """A request this server cannot honour (answered with HTTP 400)."""


class EmbeddingUsage(BaseModel):
    model_config = ConfigDict(frozen=True)

    calls: int = 0
    texts: int = 0
    tokens: int = 0
    seconds: float = 0.0


class ServerStats(BaseModel):
    """What the server has answered since it started (``GET /v1/stats``)."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = 1
    chat: Usage = Field(default_factory=Usage)
    embeddings: EmbeddingUsage = Field(default_factory=EmbeddingUsage)
    errors: int = 0


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):  # OpenAI content parts; only text parts make sense here
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            elif isinstance(part, str):
                parts.append(part)
            else:
                raise BadRequest(f"{where}: only text content parts are supported")
        return "".join(parts)
    raise BadRequest(f"{where}: content must be a string or a list of text parts")


def _schema(response_format: Any) -> dict[str, Any] | None:
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise BadRequest("response_format must be an object")
    kind = response_format.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise BadRequest("response_format.json_schema.schema must be a JSON schema object")
        return schema
    if kind == "json_object":
        schema = response_format.get("schema")
        # Without a schema, any JSON object will do (still grammar-constrained locally).
        return schema if isinstance(schema, dict) else {"type": "object"}
    raise BadRequest(f"response_format type {kind!r} is not one of text, json_object, json_schema")


def _number(body: dict[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key} must be a number")
    return kind(value)


def chat_request_from_body(body: dict[str, Any], model: str) -> ChatRequest:
    """Map an OpenAI chat-completions body onto a ``ChatRequest`` for ``model``.

    >>> body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 9,
    ...         "response_format": {"type": "json_object", "schema": {"type": "object"}}}
    >>> r = chat_request_from_body(body, "fake:constant")
    >>> (r.max_tokens, r.json_schema, r.seed)
    (9, {'type': 'object'}, 0)
    """
    if body.get("stream"):
        raise BadRequest("stream=true is not supported; ask for the whole answer")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("messages must be a non-empty list")
    messages = []
    for i, msg in enumerate(raw):
        if not isinstance(msg, dict):
            raise BadRequest(f"messages[{i}] must be an object")
        role = ROLES.get(str(msg.get("role")))
        if role is None:
            raise BadRequest(f"messages[{i}].role {msg.get('role')!r} is not supported")
        messages.append(Message(role=role, content=_text(msg.get("content"), f"messages[{i}]")))  # type: ignore[arg-type]
    max_tokens = _number(body, "max_completion_tokens", int)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", int)
    temperature = _number(body, "temperature", float)
    seed = _number(body, "seed", int)
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        temperature=0.0 if temperature is None else temperature,
        max_tokens=512 if max_tokens is None else max_tokens,
        json_schema=_schema(body.get("response_format")),
        seed=0 if seed is None else seed,
    )


def embedding_inputs(body: dict[str, Any]) -> list[str]:
    """The texts of an embeddings body (a string or a list of strings)."""
    raw = body.get("input")
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        return list(raw)
    raise BadRequest("input must be a string or a list of strings (token ids not supported)")


class ModelServer(LoopbackService):
    """Serve ``model`` (and ``embedder``) over the OpenAI wire format on ``host:port``.

    Names resolve through the provider registry (with its cache, retries and limits); objects
    are wrapped the same way. ``port=0`` picks a free port. Use as a context manager, or call
    ``serve_forever()`` from a command line.

    >>> with ModelServer("fake:constant", "fake") as srv:  # doctest: +SKIP
    ...     import httpx
    ...     httpx.get(srv.base_url + "/models").json()["data"][0]["id"]
    'fake:constant'
    """

    thread_name: ClassVar[str | None] = "judgealign-serve-http"

    def __init__(
        self,
        model: str | LLM,
        embedder: str | Embedder | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cache_dir: Path | None = None,
        concurrency: int = 1,
        retries: int = 1,
        timeout: float = 900.0,
        max_tokens_cap: int | None = None,
        token: str | None = None,
    ) -> None:
        super().__init__(_Handler, host=host, port=port)
        # Without a token only loopback clients with a loopback Host are served; a server
        # bound beyond loopback must have one (every request then carries it as a bearer).
        if token is None and host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"host {host}: a server beyond loopback needs a token")
        self.token = token
        self.model = model
        # Bounds what a client may ask for: a small local model under a JSON grammar can
        # otherwise spend minutes on one runaway answer.
        self.max_tokens_cap = max_tokens_cap
        self.embedder = embedder
        self.cache_dir = cache_dir
        self.concurrency = concurrency
        self.retries = retries
        self.timeout = timeout
        self._llm: Any = None
        self._embedder: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._chat = Usage()
        self._emb = EmbeddingUsage()
        self._errors = 0

    # -- lifecycle --------------------------------------------------------------------------
    def _resolve(self) -> None:
        from judgealign.providers.registry import resolve_embedder, resolve_llm

        self._llm = resolve_llm(
            self.model,
            cache_dir=self.cache_dir,
            retries=self.retries,
            concurrency=self.concurrency,
            timeout=self.timeout,
        )
        if self.embedder is not None:
            self._embedder = resolve_embedder(
                self.embedder, cache_dir=self.cache_dir, retries=self.retries, timeout=self.timeout
            )

    def start(self) -> Self:
        """Resolve the providers, bind the socket and serve in background threads."""
        self._resolve()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(
            target=self._loop.run_forever, name="judgealign-serve-loop", daemon=True
        )
        self._loop_thread.start()
        try:
            return super().start()
        except OSError as err:
            self.close()
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port} ({err}); pick another --port"
            ) from None

    def serve_forever(self) -> None:
        """Start (if needed) and block until interrupted."""
        self.block_until_interrupted()

    def close(self) -> None:
        """Stop serving, then stop the providers' event loop."""
        super().close()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._loop_thread is not None:
                self._loop_thread.join(timeout=5)
            self._loop.close()
            self._loop = None

    @property
    def model_name(self) -> str:
        return str(self._llm.name) if self._llm is not None else str(self.model)

    @property
    def embedder_name(self) -> str | None:
        return str(self._embedder.name) if self._embedder is not None else None

    def stats(self) -> ServerStats:
        with self._lock:
            return ServerStats(chat=self._chat, embeddings=self._emb, errors=self._errors)

    # -- work (called from HTTP threads) ----------------------------------------------------
    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=self.timeout * (self.retries + 1) + 5)
        except FutureTimeout:
            future.cancel()
            raise ProviderError(f"{self.model_name}: no answer within the server timeout") from None

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        request = chat_request_from_body(body, self.model_name)
        cap = self.max_tokens_cap
        if cap is not None and (request.max_tokens is None or request.max_tokens > cap):
            request = request.model_copy(update={"max_tokens": cap})
        response = self._run(self._llm.complete(request))
        usage = response.usage
        if response.cached:
            usage = self._stored_usage(request, response)
        with self._lock:
            self._chat = self._chat + Usage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                calls=0 if response.cached else 1,
                cached_calls=1 if response.cached else 0,
                seconds=usage.seconds,
            )
        return {
            "id": f"chatcmpl-{int(time.time() * 1000)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model_name),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": response.text},
                    "finish_reason": response.finish_reason or "stop",
                }
            ],
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.prompt_tokens + usage.completion_tokens,
            },
        }

    @staticmethod
    def _stored_usage(request: ChatRequest, response: ChatResponse) -> Usage:
        """A cache hit's original token counts, so reruns report what the model counted."""
        hit = response.usage
        if hit.cached_prompt_tokens:
            return Usage(
                prompt_tokens=hit.cached_prompt_tokens,
                completion_tokens=hit.cached_completion_tokens,
            )
        return Usage(
            prompt_tokens=request.estimated_prompt_tokens,
            completion_tokens=estimate_tokens(response.text),
        )

    def embed(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._embedder is None:
            raise BadRequest("this server has no embedder; start it with --embedder")
        texts = embedding_inputs(body)
        start = time.perf_counter()
        rows = self._run(self._embedder.embed(texts)) if texts else []
        tokens = sum(estimate_tokens(t) for t in texts)
        with self._lock:
            e = self._emb
            self._emb = EmbeddingUsage(
                calls=e.calls + 1,
                texts=e.texts + len(texts),
                tokens=e.tokens + tokens,
                seconds=e.seconds + time.perf_counter() - start,
            )
        data = [
            {"object": "embedding", "index": i, "embedding": [float(v) for v in row]}
            for i, row in enumerate(rows)
        ]
        return {
            "object": "list",
            "data": data,
            "model": str(body.get("model") or self.embedder_name),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def models(self) -> dict[str, Any]:
        names: Sequence[str | None] = (self.model_name, self.embedder_name)
        return {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": 0, "owned_by": "judgealign"}
                for n in names
                if n
            ],
        }

    def _count_error(self) -> None:
        with self._lock:
            self._errors += 1


class _Handler(JSONHandler):
    owner: ModelServer

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        if self._refused():
            return
        if path.endswith("/models"):
            self.send_json(200, self.owner.models())
        elif path.endswith("/stats"):
            self.send_json(200, self.owner.stats().model_dump(mode="json"))
        elif path in ("", "/health", "/v1/health"):
            self.send_json(200, {"status": "ok"})
        else:
            self.send_json(404, _error(404, f"no route GET {self.path}"))

    def _refused(self) -> bool:
        """Answer 401/403 and return True for a request this server must not serve."""
        owner = self.owner
        if owner.token is not None:
            given = self.headers.get("Authorization") or ""
            if not hmac.compare_digest(given.encode(), f"Bearer {owner.token}".encode()):
                self.close_connection = True
                self.send_json(401, _error(401, "missing or wrong bearer token"))
                return True
        elif not self.loopback_host():
            # DNS rebinding: a web page reaching 127.0.0.1 under its own host name.
            self.close_connection = True
            self.send_json(403, _error(403, "foreign Host refused; use 127.0.0.1"))
            return True
        if self.foreign_origin():
            self.close_connection = True
            self.send_json(403, _error(403, "cross-site request refused"))
            return True
        return False

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        owner = self.owner
        if self._refused():
            return
        try:
            if not self.json_content_type():
                self.close_connection = True
                owner._count_error()
                self.send_json(415, _error(415, "send Content-Type: application/json"))
                return
            try:
                body = self.read_json()
            except BodyTooLarge as err:
                owner._count_error()
                self.send_json(413, _error(413, str(err)))
                return
            except ValueError:
                raise BadRequest("the request body is not JSON") from None
            if not isinstance(body, dict):
                raise BadRequest("the request body must be a JSON object")
            if path.endswith("/chat/completions"):
                self.send_json(200, owner.chat(body))
            elif path.endswith("/embeddings"):
                self.send_json(200, owner.embed(body))
            else:
                self.send_json(404, _error(404, f"no route POST {self.path}"))
        except BadRequest as err:
            owner._count_error()
            self.send_json(400, _error(400, str(err)))
        except ProviderError as err:
            owner._count_error()
            status = 503 if err.transient else 502
            self.send_json(status, _error(status, str(err)))
        except JudgeAlignError as err:
            owner._count_error()
            self.send_json(400, _error(400, str(err)))
        except Exception as err:  # the server must outlive one bad request
            owner._count_error()
            self.send_json(500, _error(500, f"{type(err).__name__}: {err}"))


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "type": "invalid_request_error"}}
