"""The provider stacks the rest of judgealign talks to.

``ManagedLLM`` = Accounting(Cache(Limit(Retry(base)))): a cache hit costs no slot and no
retry; a retried call keeps its concurrency slot while it backs off (so a struggling server
is not hit harder); usage counts each logical call once.

``ManagedEmbedder`` = SingleFlight(Cache(Batch(Limit(Accounting(Retry(base)))))): only
uncached texts are batched and sent, and a text already being embedded for another caller is
awaited, not sent twice; ``usage.calls`` counts provider requests (batches) and
``usage.cached_calls`` texts served from the cache or by another caller's request.

>>> import asyncio
>>> from judgealign.testing.fake import FakeLLM
>>> from judgealign.providers.types import ChatRequest, Message
>>> llm = ManagedLLM(FakeLLM("constant"), concurrency=2)
>>> req = ChatRequest(model="m", messages=(Message(role="user", content="hi"),))
>>> _ = asyncio.run(llm.complete(req))
>>> (llm.name, llm.usage.calls)
('fake:constant', 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from judgealign.providers.accounting import AccountingEmbedder, AccountingLLM, UsageMeter
from judgealign.providers.cache import CachedEmbedder, CachedLLM
from judgealign.providers.limits import (
    BatchingEmbedder,
    ConcurrencyLimitedEmbedder,
    ConcurrencyLimitedLLM,
    SingleFlightEmbedder,
)
from judgealign.providers.protocol import LLM, Embedder, FloatMatrix, Timeout, attempt_timeout
from judgealign.providers.retry import RetryingEmbedder, RetryingLLM
from judgealign.providers.types import ChatRequest, ChatResponse, Usage


class ManagedLLM:
    """A provider with cache, concurrency/rate limits, retries and usage accounting.

    ``namespace`` separates cache entries (default: ``base.name``); the registry passes the
    full ``provider:model?params`` string so differently configured fakes never collide.
    """

    def __init__(
        self,
        base: LLM,
        *,
        cache_dir: Path | str | None = None,
        retries: int = 3,
        concurrency: int = 8,
        timeout: Timeout = "auto",
        rate_per_minute: float | None = None,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        seed: int = 0,
        namespace: str | None = None,
    ) -> None:
        self.base = base
        self._spec = namespace or base.name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        retrying = RetryingLLM(
            base,
            retries=retries,
            base_delay=base_delay,
            max_delay=max_delay,
            timeout=attempt_timeout(base, timeout),
            seed=seed,
        )
        stack: LLM = ConcurrencyLimitedLLM(
            retrying, concurrency=concurrency, rate_per_minute=rate_per_minute
        )
        self._cache: CachedLLM | None = None
        if self.cache_dir is not None:
            self._cache = CachedLLM(stack, self.cache_dir, namespace=namespace or base.name)
            stack = self._cache
        self._accounting = AccountingLLM(stack)

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def spec(self) -> str:
        """The full ``provider:model?params`` this stack was made from (what a judge file
        stores, so a reloaded judge reaches the same endpoint)."""
        return self._spec

    @property
    def usage(self) -> Usage:
        """Totals since creation or the last ``reset()``."""
        return self._accounting.usage

    @property
    def failures(self) -> int:
        """Calls that raised after all retries."""
        return self._accounting.failures

    def reset(self) -> None:
        self._accounting.reset()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await self._accounting.complete(request)

    def discard(self, request: ChatRequest) -> None:
        """Drop a cached answer the caller could not use (no-op without a cache)."""
        if self._cache is not None:
            self._cache.discard(request)


class ManagedEmbedder:
    """An embedder with per-text cache, batching, concurrency limit, retries and accounting.

    Rows come back float32 and L2-normalized whatever the base returns.
    """

    def __init__(
        self,
        base: Embedder,
        *,
        cache_dir: Path | str | None = None,
        retries: int = 3,
        concurrency: int = 4,
        batch_size: int = 64,
        timeout: Timeout = "auto",
        base_delay: float = 0.5,
        seed: int = 0,
        namespace: str | None = None,
    ) -> None:
        self.base = base
        self._spec = namespace or base.name
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.meter = UsageMeter()
        retrying = RetryingEmbedder(
            base,
            retries=retries,
            base_delay=base_delay,
            timeout=attempt_timeout(base, timeout),
            seed=seed,
        )
        counted = AccountingEmbedder(retrying, meter=self.meter)
        limited = ConcurrencyLimitedEmbedder(counted, concurrency=concurrency)
        stack: Embedder = BatchingEmbedder(limited, batch_size=batch_size)
        if self.cache_dir is not None:
            stack = CachedEmbedder(
                stack, self.cache_dir, namespace=namespace or base.name, meter=self.meter
            )
        self._stack = SingleFlightEmbedder(stack, meter=self.meter)

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def spec(self) -> str:
        """The full ``provider:model?params`` this stack was made from (what a judge file
        stores, so a reloaded judge reaches the same endpoint)."""
        return self._spec

    @property
    def usage(self) -> Usage:
        return self.meter.usage

    def reset(self) -> None:
        self.meter.reset()

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        rows = np.asarray(await self._stack.embed(texts), dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        normalized: FloatMatrix = (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        return normalized


def discard_answer(llm: LLM, request: ChatRequest) -> None:
    """Keep an unreadable answer out of the response cache: replayed, it would fail the same
    way on every later run without a single call (providers without a cache ignore this)."""
    discard = getattr(llm, "discard", None)
    if callable(discard):
        discard(request)
