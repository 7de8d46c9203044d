"""Bounding how hard we hit a provider: in-flight requests, requests per minute, batching,
one request for texts that several callers want at once.

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
from judgealign.providers.accounting import UsageMeter
from judgealign.providers.protocol import LLM, Embedder, FloatMatrix
from judgealign.providers.types import ChatRequest, ChatResponse, Usage


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


class SingleFlightEmbedder:
    """Concurrent requests for the same texts share one request: a text another call is
    already embedding is awaited, not sent again (identical batches become one request).

    The request runs as its own task, so a caller that is cancelled does not take the others'
    answer with it. Texts served by another call's request count as ``cached_calls`` in
    ``meter`` (nothing was spent on them).

    >>> import asyncio
    >>> from judgealign.testing.fake import FakeEmbedder
    >>> base = FakeEmbedder()
    >>> emb = SingleFlightEmbedder(base)
    >>> async def twice():
    ...     return await asyncio.gather(emb.embed(["a b"]), emb.embed(["a b"]))
    >>> [m.shape for m in asyncio.run(twice())], base.calls
    ([(1, 256), (1, 256)], 1)
    """

    def __init__(self, inner: Embedder, *, meter: UsageMeter | None = None) -> None:
        self.inner = inner
        self.meter = meter
        self._lock = threading.Lock()
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, tuple[asyncio.Task[FloatMatrix], int]]
        ] = weakref.WeakKeyDictionary()

    @property
    def name(self) -> str:
        return self.inner.name

    def _inflight(self) -> dict[str, tuple[asyncio.Task[FloatMatrix], int]]:
        loop = asyncio.get_running_loop()
        with self._lock:
            return self._by_loop.setdefault(loop, {})

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        unique = list(dict.fromkeys(texts))
        if not unique:
            return np.zeros((0, 0), dtype=np.float32)
        inflight = self._inflight()
        slots = {t: inflight[t] for t in unique if t in inflight}
        mine = [t for t in unique if t not in slots]
        if slots and self.meter is not None:
            self.meter.add(Usage(cached_calls=sum(1 for t in texts if t in slots)))
        if mine:
            task = asyncio.ensure_future(self.inner.embed(mine))
            for index, text in enumerate(mine):
                inflight[text] = slots[text] = (task, index)

            def done(finished: asyncio.Task[FloatMatrix], sent: list[str] = mine) -> None:
                for text in sent:
                    if inflight.get(text, (None, 0))[0] is finished:
                        del inflight[text]
                if not finished.cancelled():
                    finished.exception()  # retrieved here: every waiter may have gone

            task.add_done_callback(done)
        answers: dict[asyncio.Task[FloatMatrix], FloatMatrix] = {}
        for task_, _ in slots.values():
            if task_ not in answers:
                answers[task_] = np.asarray(await asyncio.shield(task_), dtype=np.float32)
        rows = {t: answers[task_][index] for t, (task_, index) in slots.items()}
        return np.stack([rows[t] for t in texts]).astype(np.float32, copy=False)
