"""A tiny OpenAI-compatible HTTP server for tests and throughput benchmarks.

It speaks the real wire format (``POST /v1/chat/completions``, ``POST /v1/embeddings``,
``GET /v1/models``) on 127.0.0.1 with only the standard library, so provider code is tested
against real HTTP without any network model. Each chat request takes the next scripted reply
(or asks ``handler``); every request body is recorded. The HTTP plumbing it shares with
``judgealign.serve`` lives in ``judgealign.http_base``.

``Faults`` turns it into a fault-injecting endpoint: a share of requests get a 500 (whose
body echoes the request's Authorization header, as some proxies do), a 429 with Retry-After,
no answer before the client's timeout, a body cut off mid-way, an HTML page instead of JSON,
or a judgement whose score is off the scale or missing. ``model_answer`` answers like a
model would: judge requests with a score on the requested scale, reflection requests with
guidelines drawn from their labels (``judgealign.testing.reflection``).

>>> from judgealign.testing.server import Answer, HttpError, OpenAICompatServer
>>> with OpenAICompatServer(replies=[HttpError(500), Answer("hi")]) as srv:
...     url = srv.base_url  # e.g. http://127.0.0.1:40123/v1
>>> with OpenAICompatServer(handler=model_answer, faults=Faults(rate=0.6)) as srv:
...     url = srv.base_url  # 60% of requests fail in one of FAULT_KINDS
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from judgealign.http_base import JSONHandler, LoopbackService

DEFAULT_TEXT = '{"rationale": "server default answer.", "score": 2}'
EMBED_DIM = 64
#: Every fault ``Faults`` can inject; the first five also hit embedding requests.
FAULT_KINDS = (
    "http_500",
    "http_429",
    "timeout",
    "truncated",
    "not_json",
    "off_scale",
    "missing_score",
)
TRANSPORT_FAULTS = FAULT_KINDS[:5]


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


@dataclass(frozen=True)
class Truncated:
    """A 200 that promises the whole answer's length, sends half of it and hangs up."""

    then: Answer = field(default_factory=Answer)


Reply = Answer | HttpError | Delay | Malformed | RejectJsonSchema | Truncated
Handler = Callable[[dict[str, Any]], Reply]


@dataclass(frozen=True)
class Faults:
    """Which requests fail, and how: each request fails with probability ``rate`` in one of
    ``kinds`` (embedding requests only in transport kinds), decided by a hash of ``seed``,
    the request body and how often that body came before. The same requests fail in the same
    ways whatever their arrival order, and a repeated request (a retry) draws anew.

    ``retry_after``: the 429's Retry-After (seconds); ``stall``: how long a ``timeout`` fault
    holds its answer (make it longer than the client's ``?timeout=``).

    >>> Faults(rate=0.2).kind_for("/v1/chat/completions", {"model": "m"}, 0) in (None, *FAULT_KINDS)
    True
    """

    rate: float = 0.2
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after: float = 0.05
    stall: float = 3.0

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in FAULT_KINDS]
        if unknown or not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"faults: rate in [0, 1] and kinds from {FAULT_KINDS}")

    def kind_for(self, path: str, body: dict[str, Any], occurrence: int) -> str | None:
        """The fault for the ``occurrence``-th arrival of ``body`` at ``path`` (None: none)."""
        kinds = self.kinds
        if path.endswith("/embeddings"):
            kinds = tuple(k for k in kinds if k in TRANSPORT_FAULTS)
        if not kinds or self.rate <= 0:
            return None
        blob = json.dumps([self.seed, path, body, occurrence], sort_keys=True, default=str)
        digest = hashlib.sha256(blob.encode("utf-8")).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= self.rate:
            return None
        return kinds[int.from_bytes(digest[8:16], "big") % len(kinds)]


def model_answer(body: dict[str, Any]) -> Reply:
    """Answer like a model: reflection requests with the fake reflection model's guidelines,
    judge requests with a score from the request's schema (a hash of the prompt picks it).

    Use as ``OpenAICompatServer(handler=model_answer)`` to run ``align``/``evaluate`` over
    real HTTP without a model.
    """
    from judgealign.judge.scoring import PARSE_REMINDER
    from judgealign.providers.types import ChatRequest, Message
    from judgealign.testing import reflection

    schema = _schema_of(body)
    title = str(schema.get("title", ""))
    messages = tuple(
        Message(role=m.get("role", "user"), content=str(m.get("content", "")))
        for m in body.get("messages", [])
        if isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
    )
    if title and title != "judgement":
        model = str(body.get("model", "m"))
        request = ChatRequest(model=model, messages=messages, json_schema=schema)
        return Answer(reflection.answer(request))
    enum = schema.get("properties", {}).get("score", {}).get("enum") or [1, 2, 3]
    # A re-ask after an unreadable answer gets the answer the first ask should have had.
    prompt = (messages[-1].content if messages else "").replace(PARSE_REMINDER, "").rstrip()
    pick = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=4).digest(), "big")
    score = enum[pick % len(enum)]
    return Answer(json.dumps({"rationale": "The item shows what the scale asks.", "score": score}))


def _schema_of(body: dict[str, Any]) -> dict[str, Any]:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return {}
    schema = fmt.get("json_schema", {}).get("schema") if "json_schema" in fmt else fmt.get("schema")
    return schema if isinstance(schema, dict) else {}


@dataclass
class RecordedRequest:
    """One request as received: ``at`` is ``time.monotonic()`` on arrival, ``fault`` the
    fault injected into its answer (None: answered normally)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    at: float = field(default_factory=time.monotonic)
    fault: str | None = None


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
        faults: Faults | None = None,
        embed_dim: int = EMBED_DIM,
    ) -> None:
        super().__init__(_RequestHandler)
        self.replies: list[Reply] = list(replies)
        self.handler = handler
        self.delay = delay
        self.default_text = default_text
        self.model = model
        self.faults = faults
        self.embed_dim = embed_dim
        self.requests: list[RecordedRequest] = []
        #: faults injected so far, by kind
        self.injected: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._seen: Counter[str] = Counter()

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

    def _fault(self, path: str, body: dict[str, Any]) -> str | None:
        if self.faults is None:
            return None
        key = hashlib.sha256(
            json.dumps([path, body], sort_keys=True, default=str).encode("utf-8")
        ).hexdigest()
        with self._lock:
            occurrence = self._seen[key]
            self._seen[key] += 1
        kind = self.faults.kind_for(path, body, occurrence)
        if kind is not None:
            with self._lock:
                self.injected[kind] += 1
        return kind

    def _faulty_reply(self, kind: str, auth: str, normal: Callable[[], Reply]) -> Reply:
        faults = self.faults or Faults()
        if kind == "http_500":
            # Proxies that echo the request put the caller's key in the error body.
            return HttpError(500, f"injected failure; request had Authorization: {auth}")
        if kind == "http_429":
            return HttpError(429, "injected rate limit", retry_after=faults.retry_after)
        if kind == "timeout":
            return Delay(faults.stall, then=normal())
        if kind == "truncated":
            answer = normal()
            return Truncated(answer if isinstance(answer, Answer) else Answer())
        if kind == "not_json":
            return Malformed("<html><body><h1>502 Bad Gateway</h1></body></html>")
        if kind == "off_scale":
            return Answer('{"rationale": "injected: off the scale.", "score": 97}')
        return Answer('{"rationale": "injected: no score given."}')

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
        record = self._record(body)
        path = self.path.rstrip("/")
        if path.endswith("/embeddings"):
            self._embeddings(body, record)
        elif path.endswith("/chat/completions"):
            self.owner._enter()
            try:
                self._chat(body, record)
            finally:
                self.owner._leave()
        else:
            self.send_json(404, {"error": {"message": f"no route {self.path}"}})

    def _record(self, body: dict[str, Any] | None) -> RecordedRequest:
        rec = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
        with self.owner._lock:
            self.owner.requests.append(rec)
        return rec

    def _chat(self, body: dict[str, Any], record: RecordedRequest) -> None:
        self.owner._wait(self.owner.delay)
        fault = record.fault = self.owner._fault(self.path, body)
        if fault is not None:
            auth = self.headers.get("Authorization", "")
            reply = self.owner._faulty_reply(fault, auth, lambda: self.owner._next_reply(body))
        else:
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
        elif isinstance(reply, Truncated):
            self._send_truncated(json.dumps(_chat_payload(reply.then, body, self.owner.model)))
        else:
            self.send_json(200, _chat_payload(reply, body, self.owner.model))

    def _send_truncated(self, text: str) -> None:
        data = text.encode("utf-8")
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _embeddings(self, body: dict[str, Any], record: RecordedRequest) -> None:
        self.owner._wait(self.owner.delay)
        texts = body.get("input", [])
        if isinstance(texts, str):
            texts = [texts]
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": hashed_embedding(str(t), self.owner.embed_dim),
            }
            for i, t in enumerate(texts)
        ]
        tokens = sum(max(1, len(str(t)) // 4) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        model = body.get("model", self.owner.model)
        payload = {"object": "list", "data": data, "model": model, "usage": usage}
        fault = record.fault = self.owner._fault(self.path, body)
        if fault is None:
            self.send_json(200, payload)
            return
        auth = self.headers.get("Authorization", "")
        reply = self.owner._faulty_reply(fault, auth, Answer)
        if isinstance(reply, Delay):
            self.owner._wait(reply.seconds)
            self.send_json(200, payload)
        elif isinstance(reply, Truncated):
            self._send_truncated(json.dumps(payload))
        elif isinstance(reply, HttpError):
            headers = {}
            if reply.retry_after is not None:
                headers["Retry-After"] = f"{reply.retry_after:g}"
            err = {"error": {"code": reply.status, "message": reply.message}}
            self.send_json(reply.status, err, headers)
        elif isinstance(reply, Malformed):
            self.send_bytes(200, reply.body.encode())
