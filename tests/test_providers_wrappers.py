"""Cache, retry, limits and accounting wrappers, and the ManagedLLM stack."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from judgealign.errors import ConfigError, ProviderError
from judgealign.providers.accounting import AccountingLLM
from judgealign.providers.cache import CachedLLM
from judgealign.providers.limits import ConcurrencyLimitedLLM, LoopSemaphore, RateLimiter
from judgealign.providers.managed import ManagedLLM
from judgealign.providers.openai_compat import OpenAICompatibleLLM
from judgealign.providers.retry import Backoff, RetryingLLM, ThrottledError
from judgealign.providers.types import ChatRequest, ChatResponse, Message, Usage
from judgealign.testing.server import Answer, HttpError, OpenAICompatServer


class StubLLM:
    """Answers with the prompt length; optional scripted errors and delay; counts calls."""

    def __init__(
        self, errors: list[Exception] | None = None, delay: float = 0.0, name: str = "stub:m"
    ) -> None:
        self.errors = list(errors or [])
        self.delay = delay
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.errors:
                raise self.errors.pop(0)
            usage = Usage(prompt_tokens=10, completion_tokens=5, calls=1)
            return ChatResponse(text=f"answer {request.messages[-1].content}", usage=usage)
        finally:
            self.in_flight -= 1


def req(text: str = "q", **kw: object) -> ChatRequest:
    return ChatRequest(model="m", messages=(Message(role="user", content=text),), **kw)  # type: ignore[arg-type]


async def no_sleep(seconds: float) -> None:
    return None


# -- cache -----------------------------------------------------------------------------------


async def test_cache_hit_makes_no_server_call_and_survives_new_object(tmp_path: Path) -> None:
    with OpenAICompatServer(replies=[Answer("first")]) as srv:
        base = OpenAICompatibleLLM("m", base_url=srv.base_url, api_key="", timeout=2)
        llm = ManagedLLM(base, cache_dir=tmp_path, retries=0)
        a = await llm.complete(req())
        b = await llm.complete(req())
        assert len(srv.chat_requests) == 1
        assert (a.text, a.cached) == ("first", False)
        assert (b.text, b.cached) == ("first", True)
        # Hits spend nothing now and say what the cache saved.
        assert b.usage == Usage(
            cached_calls=1,
            cached_prompt_tokens=11,
            cached_completion_tokens=a.usage.completion_tokens,
        )
        assert llm.usage.calls == 1 and llm.usage.cached_calls == 1
        assert llm.usage.prompt_tokens == 11  # only the real call's tokens
        assert llm.usage.cached_prompt_tokens == 11 and llm.usage.all_prompt_tokens == 22

        await llm.complete(req(temperature=0.7))
        await llm.complete(req(seed=1))
        await llm.complete(req(tag="sample-2"))
        assert len(srv.chat_requests) == 4

        fresh = ManagedLLM(
            OpenAICompatibleLLM("m", base_url=srv.base_url, api_key="", timeout=2),
            cache_dir=tmp_path,
        )
        c = await fresh.complete(req())
        assert c.cached and c.text == "first"
        assert len(srv.chat_requests) == 4


async def test_cache_keeps_original_usage_and_separates_namespaces(tmp_path: Path) -> None:
    stub = StubLLM()
    cached = CachedLLM(stub, tmp_path)
    await cached.complete(req())
    stored = cached.stored(req())
    assert stored is not None and stored.usage.prompt_tokens == 10
    hit = await cached.complete(req())
    # A hit spends nothing now, yet still says what the request cost.
    assert hit.cached and hit.usage.prompt_tokens == 0
    assert hit.usage.cached_calls == 1 and hit.usage.cached_prompt_tokens == 10
    other = CachedLLM(StubLLM(name="stub:other"), tmp_path)
    assert not (await other.complete(req())).cached
    files = list((tmp_path / "llm").glob("*/*.json"))
    assert len(files) == 2
    entry = json.loads(files[0].read_text())
    assert entry["schema_version"] == 1 and "response" in entry


async def test_concurrent_identical_requests_share_one_call(tmp_path: Path) -> None:
    stub = StubLLM(delay=0.05)
    cached = CachedLLM(stub, tmp_path)
    out = await asyncio.gather(*(cached.complete(req()) for _ in range(5)))
    assert stub.calls == 1
    assert sum(not r.cached for r in out) == 1


async def test_cache_does_not_store_failures(tmp_path: Path) -> None:
    stub = StubLLM(errors=[ProviderError("boom", transient=True)])
    cached = CachedLLM(stub, tmp_path)
    with pytest.raises(ProviderError):
        await cached.complete(req())
    assert not (await cached.complete(req())).cached
    assert stub.calls == 2


async def test_corrupt_entry_is_a_miss(tmp_path: Path) -> None:
    cached = CachedLLM(StubLLM(), tmp_path)
    path = cached.store.path(cached.key(req()))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert not (await cached.complete(req())).cached
    assert (await cached.complete(req())).cached


WRITER = """
import asyncio, sys
from judgealign.providers.cache import CachedLLM
from judgealign.testing.fake import FakeLLM
from judgealign.providers.types import ChatRequest, Message

async def main():
    llm = CachedLLM(FakeLLM("constant"), sys.argv[1])
    reqs = [ChatRequest(model="m", messages=(Message(role="user", content=f"q{i}"),))
            for i in range(30)]
    await asyncio.gather(*(llm.complete(r) for r in reqs))

asyncio.run(main())
"""


def test_two_processes_share_the_cache(tmp_path: Path) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)]) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    files = list((tmp_path / "llm").glob("*/*.json"))
    assert len(files) == 30
    assert all(json.loads(f.read_text())["response"]["text"] == "ok" for f in files)
    assert not list((tmp_path / "llm").glob("*/.tmp-*"))


# -- retry -----------------------------------------------------------------------------------


async def test_retry_only_transient() -> None:
    stub = StubLLM(errors=[ProviderError("bad request", transient=False, status=400)])
    with pytest.raises(ProviderError, match="bad request"):
        await RetryingLLM(stub, retries=3, sleep=no_sleep).complete(req())
    assert stub.calls == 1


async def test_retry_gives_up_after_retries() -> None:
    errors: list[Exception] = [ProviderError(f"e{i}", transient=True) for i in range(5)]
    stub = StubLLM(errors=errors)
    with pytest.raises(ProviderError, match="e2"):
        await RetryingLLM(stub, retries=2, sleep=no_sleep).complete(req())
    assert stub.calls == 3


def test_backoff_is_seeded_exponential_and_honours_retry_after() -> None:
    err = ProviderError("x", transient=True)
    first, second = (Backoff(base_delay=1.0, max_delay=100, seed=3) for _ in range(2))
    a = [first.delay(i, err) for i in range(4)]
    assert a == [second.delay(i, err) for i in range(4)]
    other = Backoff(base_delay=1.0, max_delay=100, seed=4)
    assert a != [other.delay(i, err) for i in range(4)]
    assert all(0.5 * 2**i <= d <= 1.5 * 2**i for i, d in enumerate(a))
    assert Backoff(base_delay=1.0, max_delay=2.0).delay(10, err) <= 2.0
    assert Backoff().delay(0, ThrottledError("slow", retry_after=7.0)) == 7.0
    assert Backoff(max_retry_after=5.0).delay(0, ThrottledError("slow", retry_after=70.0)) == 5.0


async def test_retry_timeout_is_transient() -> None:
    retrying = RetryingLLM(StubLLM(delay=1.0), retries=0, timeout=0.05)
    with pytest.raises(ProviderError, match="no answer within") as info:
        await retrying.complete(req())
    assert info.value.transient


class PatientStub(StubLLM):
    """A provider that states its own per-attempt timeout (None: unbounded, as in-process)."""

    def __init__(self, attempt_timeout: float | None, delay: float) -> None:
        super().__init__(delay=delay)
        self.attempt_timeout = attempt_timeout


async def test_managed_timeout_follows_the_provider_unless_given() -> None:
    # "auto": the provider's own bound; a slow in-process model is never cut off and retried.
    quick = ManagedLLM(PatientStub(attempt_timeout=0.05, delay=0.3), retries=0)
    with pytest.raises(ProviderError, match=r"no answer within 0\.05s.*\?timeout=SECONDS"):
        await quick.complete(req())
    unbounded = PatientStub(attempt_timeout=None, delay=0.3)
    assert (await ManagedLLM(unbounded, retries=0).complete(req())).text
    assert unbounded.calls == 1
    # An explicit timeout wins over the provider's.
    explicit = ManagedLLM(PatientStub(attempt_timeout=None, delay=0.3), retries=0, timeout=0.05)
    with pytest.raises(ProviderError, match=r"no answer within 0\.05s"):
        await explicit.complete(req())


# -- limits ----------------------------------------------------------------------------------


async def test_concurrency_limit_observed_at_server() -> None:
    with OpenAICompatServer(delay=0.1) as srv:
        base = OpenAICompatibleLLM("m", base_url=srv.base_url, api_key="", timeout=5)
        llm = ManagedLLM(base, concurrency=3)
        await asyncio.gather(*(llm.complete(req(f"q{i}")) for i in range(12)))
        assert len(srv.chat_requests) == 12
        assert 2 <= srv.max_in_flight <= 3


async def test_concurrency_limit_with_stub() -> None:
    stub = StubLLM(delay=0.02)
    llm = ConcurrencyLimitedLLM(stub, concurrency=2)
    await asyncio.gather(*(llm.complete(req(f"q{i}")) for i in range(8)))
    assert stub.max_in_flight == 2


async def test_rate_limit_spaces_requests() -> None:
    llm = ConcurrencyLimitedLLM(StubLLM(), concurrency=8, rate_per_minute=1200)  # 50 ms apart
    start = time.monotonic()
    await asyncio.gather(*(llm.complete(req(f"q{i}")) for i in range(5)))
    assert time.monotonic() - start >= 0.19


def test_limits_validate_arguments() -> None:
    with pytest.raises(ConfigError):
        LoopSemaphore(0)
    with pytest.raises(ConfigError):
        RateLimiter(0)


def test_managed_llm_works_across_event_loops() -> None:
    llm = ManagedLLM(StubLLM(delay=0.01), concurrency=1)

    async def burst(tag: str) -> list[ChatResponse]:
        return await asyncio.gather(*(llm.complete(req(f"{tag}{i}")) for i in range(3)))

    assert len(asyncio.run(burst("a"))) == 3
    assert len(asyncio.run(burst("b"))) == 3  # a semaphore bound to the first loop would fail
    assert llm.usage.calls == 6


# -- accounting ------------------------------------------------------------------------------


async def test_accounting_totals_and_reset(tmp_path: Path) -> None:
    stub = StubLLM(errors=[ProviderError("permanent", transient=False)])
    llm = ManagedLLM(stub, cache_dir=tmp_path, retries=0)
    with pytest.raises(ProviderError):
        await llm.complete(req("x"))
    for text in ("a", "b", "c", "a"):
        await llm.complete(req(text))
    usage = llm.usage
    assert (usage.calls, usage.cached_calls) == (3, 1)
    assert (usage.prompt_tokens, usage.completion_tokens) == (30, 15)
    assert usage.seconds > 0
    assert llm.failures == 1
    assert llm.base is stub and llm.name == "stub:m"
    llm.reset()
    assert llm.usage == Usage() and llm.failures == 0


async def test_accounting_is_safe_under_concurrency() -> None:
    llm = AccountingLLM(StubLLM(delay=0.001))
    await asyncio.gather(*(llm.complete(req(str(i))) for i in range(50)))
    assert llm.usage.calls == 50 and llm.usage.prompt_tokens == 500


async def test_managed_retries_server_errors() -> None:
    with OpenAICompatServer(replies=[HttpError(500), Answer("ok")]) as srv:
        base = OpenAICompatibleLLM("m", base_url=srv.base_url, api_key="", timeout=2)
        llm = ManagedLLM(base, retries=2, base_delay=0.001)
        assert (await llm.complete(req())).text == "ok"
        assert llm.usage.calls == 1 and llm.failures == 0
        assert len(srv.chat_requests) == 2
