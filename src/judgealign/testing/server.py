"""A tiny OpenAI-compatible HTTP server for tests and throughput benchmarks.

It speaks the real wire format (``POST /v1/chat/completions``, ``POST /v1/embeddings``,
``GET /v1/models``) on 127.0.0.1 with only the standard library, so provider code is tested
against real HTTP without any network model. Each chat request takes the next scripted reply
(or asks ``handler``); every request body is recorded. The HTTP plumbing it shares with
``judgealign.serve`` lives in ``judgealign.http_base``.

>>> from judgealign.testing.server import Answer, HttpError, OpenAICompatServer
>>> with OpenAICompatServer(replies=[HttpError(500), Answer("hi")]) as srv:
...     url = srv.base_url  # e.g. http://127.0.0.1:40123/v1
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from judgealign.http_base import JSONHandler, LoopbackService

DEFAULT_TEXT = '{"rationale": "server default answer.", "score": 2}'
EMBED_DIM = 64


@dataclass(frozen=True)
class Answer:
    """A normal 200 answer. ``logprobs``: per generated token, ``(token, [(alt, logprob)...])``;
    sent only when the request asked for logprobs. ``usage=False`` omits the usage block."""

    text: str = DEFAULT_TEXT
    prompt_tokens: int = 11
    completion_tokens: int = 7
    usage: bool = True
    finish_reason: str = "stop"
    logprobs: list[tuple[str, list[tuple[str, float]]]] | None = None


@dataclass(frozen=True)
class HttpError:
    """An HTTP error reply; ``retry_after`` sets the Retry-After header (seconds)."""

    status: int = 500
    message: str = "internal error"
    retry_after: float | None = None


@dataclass(frozen=True)
class Delay:
    """Wait ``seconds`` (e.g. longer than the client timeout), then send ``then``."""

    seconds: float
    then: Reply = field(default_factory=Answer)


@dataclass(frozen=True)
class Malformed:
    """A 200 whose body is not what the client expects (bad JSON, or JSON without choices)."""

    body: str = '{"choices": [ this is not json'


@dataclass(frozen=True)
class RejectJsonSchema:
    """400 like llama.cpp's server when ``response_format.type`` is ``json_schema``; otherwise
    answers ``then``. Not consumed by rejected requests, so fallbacks reach ``then``."""

    then: Reply = field(default_factory=Answer)


Reply = Answer | HttpError | Delay | Malformed | RejectJsonSchema
Handler = Callable[[dict[str, Any]], Reply]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


def hashed_embedding(text: str, dim: int = EMBED_DIM) -> list[float]:
    """Deterministic hashed bag of words, L2-normalized (similar texts, similar vectors)."""
    vec = [0.0] * dim
    for token in re.findall(r"[a-z0-9_]+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
        vec[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0:
        vec[0] = 1.0
        return vec
    return [v / norm for v in vec]


class OpenAICompatServer(LoopbackService):
    """Background OpenAI-compatible server; use as a context manager.

    ``replies`` are consumed in order by chat requests; then ``handler(body)`` decides, else
    ``Answer(default_text)``. ``delay`` answers every request after that many seconds
    (concurrently, for throughput tests). ``requests`` records everything received, and
    ``max_in_flight`` the most chat requests being handled at once.
    """

    # A short poll interval keeps shutdown (and so each test's teardown) fast.
    poll_interval: ClassVar[float] = 0.02

    def __init__(
        self,
        *,
        replies: Iterable[Reply] = (),
        handler: Handler | None = None,
        delay: float = 0.0,
        default_text: str = DEFAULT_TEXT,
        model: str = "test-model",
    ) -> None:
        super().__init__(_RequestHandler)
        self.replies: list[Reply] = list(replies)
        self.handler = handler
        self.delay = delay
        self.default_text = default_text
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop serving; pending ``Delay``s end at once instead of holding shutdown up."""
        self._closing.set()
        super().close()

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the chat-completion requests received, in arrival order."""
        with self._lock:
            return [
                r.body for r in self.requests if r.path.endswith("/chat/completions") and r.body
            ]

    # -- behaviour -------------------------------------------------------------------------

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self.replies:
                head = self.replies[0]
                rejects = isinstance(head, RejectJsonSchema) and _wants_json_schema(body)
                if not rejects:
                    self.replies.pop(0)
                return head
        if self.handler is not None:
            return self.handler(body)
        return Answer(self.default_text)

    def _wait(self, seconds: float) -> None:
        # Event.wait instead of sleep so closing the server ends pending delays at once.
        if seconds > 0:
            self._closing.wait(seconds)

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _wants_json_schema(body: dict[str, Any]) -> bool:
    fmt = body.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") == "json_schema"


def _chat_payload(answer: Answer, body: dict[str, Any], model: str) -> dict[str, Any]:
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": answer.text},
        "finish_reason": answer.finish_reason,
    }
    if body.get("logprobs") and answer.logprobs is not None:
        choice["logprobs"] = {
            "content": [
                {
                    "token": tok,
                    "logprob": next((lp for alt, lp in alts if alt == tok), -0.01),
                    "top_logprobs": [{"token": alt, "logprob": lp} for alt, lp in alts],
                }
                for tok, alts in answer.logprobs
            ]
        }
    payload: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", model),
        "choices": [choice],
    }
    if answer.usage:
        payload["usage"] = {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        }
    return payload


class _RequestHandler(JSONHandler):
    owner: OpenAICompatServer

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/").endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": self.owner.model}]})
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        try:
            body = self.read_json()
        except ValueError:
            self._record(None)
            self.send_json(400, {"error": {"message": "request body is not JSON"}})
            return
        self._record(body)
        path = self.path.rstrip("/")
        if path.endswith("/embeddings"):
            self._embeddings(body)
        elif path.endswith("/chat/completions"):
            self.owner._enter()
            try:
                self._chat(body)
            finally:
                self.owner._leave()
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def _record(self, body: dict[str, Any] | None) -> None:
        rec = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
        with self.owner._lock:
            self.owner.requests.append(rec)

    def _chat(self, body: dict[str, Any]) -> None:
        self.owner._wait(self.owner.delay)
        reply = self.owner._next_reply(body)
        while True:
            if isinstance(reply, Delay):
                self.owner._wait(reply.seconds)
                reply = reply.then
            elif isinstance(reply, RejectJsonSchema):
                if _wants_json_schema(body):
                    msg = (
                        'response_format type must be one of "text" or "json_object", '
                        "but got: json_schema"
                    )
                    self.send_json(400, {"error": {"code": 400, "message": msg}})
                    return
                reply = reply.then
            else:
                break
        if isinstance(reply, HttpError):
            headers = {}
            if reply.retry_after is not None:
                headers["Retry-After"] = f"{reply.retry_after:g}"
            err = {"error": {"code": reply.status, "message": reply.message}}
            self.send_json(reply.status, err, headers)
        elif isinstance(reply, Malformed):
            self.send_bytes(200, reply.body.encode())
        else:
            self.send_json(200, _chat_payload(reply, body, self.owner.model))

    def _embeddings(self, body: dict[str, Any]) -> None:
        self.owner._wait(self.owner.delay)
        texts = body.get("input", [])
        if isinstance(texts, str):
            texts = [texts]
        data = [
            {"object": "embedding", "index": i, "embedding": hashed_embedding(str(t))}
            for i, t in enumerate(texts)
        ]
        tokens = sum(max(1, len(str(t)) // 4) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        model = body.get("model", self.owner.model)
        self.send_json(200, {"object": "list", "data": data, "model": model, "usage": usage})
