"""Running usage totals for LLMs and embedders.

A ``UsageMeter`` is a thread-safe accumulator that several wrappers can share (the embedding
cache records hits into the same meter that counts provider calls below it).

>>> import asyncio
>>> from judgealign.testing.fake import FakeLLM
>>> from judgealign.providers.types import ChatRequest, Message
>>> llm = AccountingLLM(FakeLLM("constant"))
>>> req = ChatRequest(model="m", messages=(Message(role="user", content="hi"),))
>>> _ = asyncio.run(llm.complete(req))
>>> llm.usage.calls
1
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from judgealign.providers.protocol import LLM, Embedder, FloatMatrix
from judgealign.providers.types import ChatRequest, ChatResponse, Usage


class UsageMeter:
    """Thread-safe running ``Usage`` total plus a count of failed calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage = Usage()
        self._failures = 0

    def add(self, usage: Usage) -> None:
        with self._lock:
            self._usage = self._usage + usage

    def add_failure(self) -> None:
        with self._lock:
            self._failures += 1

    @property
    def usage(self) -> Usage:
        with self._lock:
            return self._usage

    @property
    def failures(self) -> int:
        with self._lock:
            return self._failures

    def reset(self) -> None:
        with self._lock:
            self._usage = Usage()
            self._failures = 0


class AccountingLLM:
    """Adds every answer's usage to a running total.

    Counts ``calls`` for answers from the provider and ``cached_calls`` for cache hits
    (``response.cached``); tokens come from the response; ``seconds`` is the wall time of each
    call as seen here (so concurrent calls add up to more than the elapsed time).
    """

    def __init__(self, inner: LLM, *, meter: UsageMeter | None = None) -> None:
        self.inner = inner
        self.meter = meter or UsageMeter()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def usage(self) -> Usage:
        return self.meter.usage

    @property
    def failures(self) -> int:
        return self.meter.failures

    def reset(self) -> None:
        self.meter.reset()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        start = time.perf_counter()
        try:
            response = await self.inner.complete(request)
        except Exception:
            self.meter.add_failure()
            raise
        cached = response.cached
        self.meter.add(
            response.usage.model_copy(
                update={
                    "calls": 0 if cached else 1,
                    "cached_calls": 1 if cached else 0,
                    "seconds": time.perf_counter() - start,
                }
            )
        )
        return response


class AccountingEmbedder:
    """Counts provider embedding requests (``calls``), estimated tokens (chars/4, as
    ``prompt_tokens``) and seconds. Put it below the cache; the cache records its hits as
    ``cached_calls`` (one per text) into the same meter."""

    def __init__(self, inner: Embedder, *, meter: UsageMeter | None = None) -> None:
        self.inner = inner
        self.meter = meter or UsageMeter()

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def usage(self) -> Usage:
        return self.meter.usage

    def reset(self) -> None:
        self.meter.reset()

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        start = time.perf_counter()
        try:
            out = await self.inner.embed(texts)
        except Exception:
            self.meter.add_failure()
            raise
        tokens = sum(max(1, len(t) // 4) for t in texts)
        self.meter.add(Usage(prompt_tokens=tokens, calls=1, seconds=time.perf_counter() - start))
        return out
