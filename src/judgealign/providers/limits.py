"""Bounding how hard we hit a provider: in-flight requests, requests per minute, batching.

>>> import asyncio
>>> from judgealign.testing.fake import FakeLLM
>>> llm = ConcurrencyLimitedLLM(FakeLLM("constant"), concurrency=2, rate_per_minute=600)
>>> llm.concurrency
2
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Sequence

import numpy as np

from judgealign.errors import ConfigError
from judgealign.providers.protocol import LLM, Embedder, FloatMatrix
from judgealign.providers.types import ChatRequest, ChatResponse


class LoopSemaphore:
    """An ``asyncio.Semaphore`` per running event loop.

    A plain semaphore binds to the first loop that waits on it, and callers commonly run
    several ``asyncio.run`` calls (fit, then predict) with the same provider object.
    """

    def __init__(self, value: int) -> None:
        if value < 1:
            raise ConfigError(f"concurrency must be >= 1, got {value}")
        self.value = value
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._by_loop = weakref.WeakKeyDictionary()

    def get(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        with self._lock:
            sem = self._by_loop.get(loop)
            if sem is None:
                sem = asyncio.Semaphore(self.value)
                self._by_loop[loop] = sem
            return sem


class RateLimiter:
    """Spaces request starts at least ``60 / rate_per_minute`` seconds apart (no bursts)."""

    def __init__(self, rate_per_minute: float) -> None:
        if rate_per_minute <= 0:
            raise ConfigError(f"rate_per_minute must be > 0, got {rate_per_minute}")
        self.interval = 60.0 / rate_per_minute
        self._lock = threading.Lock()
        self._next = 0.0

    async def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


class ConcurrencyLimitedLLM:
    """At most ``concurrency`` calls in flight; optionally at most ``rate_per_minute`` starts."""

    def __init__(
        self, inner: LLM, *, concurrency: int = 8, rate_per_minute: float | None = None
    ) -> None:
        self.inner = inner
        self.concurrency = concurrency
        self.rate_per_minute = rate_per_minute
        self._sem = LoopSemaphore(concurrency)
        self._rate = RateLimiter(rate_per_minute) if rate_per_minute else None

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        async with self._sem.get():
            if self._rate is not None:
                await self._rate.acquire()
            return await self.inner.complete(request)


class ConcurrencyLimitedEmbedder:
    """At most ``concurrency`` embedding requests in flight."""

    def __init__(
        self, inner: Embedder, *, concurrency: int = 4, rate_per_minute: float | None = None
    ) -> None:
        self.inner = inner
        self.concurrency = concurrency
        self._sem = LoopSemaphore(concurrency)
        self._rate = RateLimiter(rate_per_minute) if rate_per_minute else None

    @property
    def name(self) -> str:
        return self.inner.name

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        async with self._sem.get():
            if self._rate is not None:
                await self._rate.acquire()
            return await self.inner.embed(texts)


class BatchingEmbedder:
    """Splits a request into batches of ``batch_size`` distinct texts sent concurrently (the
    layer below bounds concurrency) and reassembles rows in input order."""

    def __init__(self, inner: Embedder, *, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.inner = inner
        self.batch_size = batch_size

    @property
    def name(self) -> str:
        return self.inner.name

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        unique = list(dict.fromkeys(texts))
        if not unique:
            return np.zeros((0, 0), dtype=np.float32)
        batches = [unique[i : i + self.batch_size] for i in range(0, len(unique), self.batch_size)]
        parts = await asyncio.gather(*(self.inner.embed(b) for b in batches))
        rows = np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=0)
        index = {t: i for i, t in enumerate(unique)}
        return rows[[index[t] for t in texts]]
