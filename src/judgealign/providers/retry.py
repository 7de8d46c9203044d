"""Retrying transient provider failures with seeded exponential backoff.

Only ``ProviderError(transient=True)`` is retried (timeouts, connection errors, 429, 5xx);
a ``ThrottledError`` carries the server's ``Retry-After`` which is honoured.

>>> import asyncio
>>> from judgealign.testing.fake import FakeLLM, failing
>>> from judgealign.providers.types import ChatRequest, Message
>>> llm = RetryingLLM(FakeLLM(script=[failing(500)]), retries=2, base_delay=0.0)
>>> req = ChatRequest(model="m", messages=(Message(role="user", content="hi"),))
>>> asyncio.run(llm.complete(req)).text
'ok'
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import numpy as np

from judgealign.errors import ProviderError
from judgealign.providers.protocol import LLM, Embedder, FloatMatrix
from judgealign.providers.types import ChatRequest, ChatResponse

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class ThrottledError(ProviderError):
    """A transient error that says how long to wait (HTTP 429/503 ``Retry-After``)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, status: int | None = 429
    ) -> None:
        super().__init__(message, transient=True, status=status)
        self.retry_after = retry_after


class Backoff:
    """Exponential backoff with seeded jitter: ``base * 2**attempt`` scaled by U(0.5, 1.5),
    capped at ``max_delay``; a server's Retry-After wins (capped at ``max_retry_after``)."""

    def __init__(
        self,
        *,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        max_retry_after: float = 120.0,
        seed: int = 0,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after
        self._rng = np.random.default_rng(seed)

    def delay(self, attempt: int, error: ProviderError) -> float:
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            return min(float(retry_after), self.max_retry_after)
        jitter = 0.5 + float(self._rng.random())
        return min(self.max_delay, self.base_delay * (2.0**attempt) * jitter)


async def call_with_retries(
    make_call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    backoff: Backoff,
    timeout: float | None,
    what: str,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run ``make_call`` up to ``retries + 1`` times; each attempt bounded by ``timeout``."""
    attempt = 0
    while True:
        try:
            if timeout is None:
                return await make_call()
            try:
                return await asyncio.wait_for(make_call(), timeout)
            except TimeoutError:
                raise ProviderError(
                    f"{what}: no answer within {timeout:g}s; check the server, or allow more "
                    "with ?timeout=SECONDS after the model name",
                    transient=True,
                ) from None
        except ProviderError as err:
            if not err.transient or attempt >= retries:
                raise
            await sleep(backoff.delay(attempt, err))
            attempt += 1


class RetryingLLM:
    """Retries transient failures of ``inner.complete``; ``timeout`` bounds each attempt."""

    def __init__(
        self,
        inner: LLM,
        *,
        retries: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float | None = None,
        seed: int = 0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.retries = retries
        self.timeout = timeout
        self.backoff = Backoff(base_delay=base_delay, max_delay=max_delay, seed=seed)
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.inner.name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return await call_with_retries(
            lambda: self.inner.complete(request),
            retries=self.retries,
            backoff=self.backoff,
            timeout=self.timeout,
            what=self.name,
            sleep=self._sleep,
        )


class RetryingEmbedder:
    """Retries transient failures of ``inner.embed``; ``timeout`` bounds each attempt."""

    def __init__(
        self,
        inner: Embedder,
        *,
        retries: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float | None = None,
        seed: int = 0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.retries = retries
        self.timeout = timeout
        self.backoff = Backoff(base_delay=base_delay, max_delay=max_delay, seed=seed)
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self.inner.name

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        return await call_with_retries(
            lambda: self.inner.embed(texts),
            retries=self.retries,
            backoff=self.backoff,
            timeout=self.timeout,
            what=self.name,
            sleep=self._sleep,
        )
