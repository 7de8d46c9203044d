"""The embedding path under trouble: damaged or mismatched cache entries, concurrent callers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from judgealign.errors import ConfigError, ProviderError
from judgealign.providers.accounting import UsageMeter
from judgealign.providers.cache import CachedEmbedder, encode_row
from judgealign.providers.managed import ManagedEmbedder
from judgealign.providers.protocol import FloatMatrix
from judgealign.providers.registry import resolve_embedder
from judgealign.testing.fake import FakeEmbedder


class CountingEmbedder:
    """Rows of ``width`` (a text's length, then ones); records every batch; can be slow or
    fail on demand."""

    def __init__(self, width: int = 8, delay: float = 0.0) -> None:
        self.width = width
        self.delay = delay
        self.batches: list[list[str]] = []
        self.fail_next = 0

    @property
    def name(self) -> str:
        return "counting:e"

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        self.batches.append(list(texts))
        await asyncio.sleep(self.delay)
        if self.fail_next:
            self.fail_next -= 1
            raise ProviderError("counting: try again", transient=True, status=503)
        rows = np.ones((len(texts), self.width), dtype=np.float32)
        rows[:, 0] = [len(t) for t in texts]
        return rows

    @property
    def texts(self) -> list[str]:
        return [t for b in self.batches for t in b]


def entry(cache: CachedEmbedder, text: str) -> Path:
    return cache.store.path(cache.key(text))


async def test_wrong_width_entry_is_re_embedded_and_rewritten(tmp_path: Path) -> None:
    base = CountingEmbedder(width=8)
    first = CachedEmbedder(base, tmp_path)
    want = await first.embed(["alpha", "beta", "gamma"])
    # Another model's row (or a hand edit) under the same key: well formed, wrong width.
    entry(first, "beta").write_bytes(encode_row(np.ones(5, dtype=np.float32)))

    again = CachedEmbedder(base, tmp_path)  # a later process: width known from the record
    got = await again.embed(["alpha", "beta", "gamma"])
    assert got.shape == (3, 8) and np.allclose(got, want)
    assert base.batches[-1] == ["beta"]  # only the bad entry cost a call
    assert again.repaired == 1
    assert (await CachedEmbedder(base, tmp_path).embed(["beta"])).shape == (1, 8)
    assert len(base.batches) == 2  # the entry was rewritten


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[:-3],  # cut short
        lambda raw: raw[:12] + b"\x00" * (len(raw) - 12),  # zeroed data: checksum fails
        lambda raw: b"garbage",
        lambda raw: b"",
        lambda raw: raw[:12] + np.full(8, np.nan, dtype="<f4").tobytes(),
    ],
    ids=["truncated", "zeroed", "garbage", "empty", "nan"],
)
async def test_damaged_entry_is_a_miss(tmp_path: Path, damage: object) -> None:
    base = CountingEmbedder()
    cache = CachedEmbedder(base, tmp_path)
    want = await cache.embed(["one text"])
    path = entry(cache, "one text")
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    got = await CachedEmbedder(base, tmp_path).embed(["one text"])
    assert np.allclose(got, want) and len(base.batches) == 2


async def test_hits_of_two_widths_without_a_record_ask_the_provider(tmp_path: Path) -> None:
    base = CountingEmbedder(width=8)
    cache = CachedEmbedder(base, tmp_path)
    for text, width in (("a", 8), ("b", 3)):
        path = entry(cache, text)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_row(np.ones(width, dtype=np.float32)))
    got = await cache.embed(["a", "b"])
    assert got.shape == (2, 8) and sorted(base.texts) == ["a", "b"]


async def test_model_swapped_behind_the_same_name_re_embeds_old_entries(tmp_path: Path) -> None:
    await CachedEmbedder(CountingEmbedder(width=8), tmp_path).embed(["old"])
    swapped = CountingEmbedder(width=16)
    meter = UsageMeter()
    got = await CachedEmbedder(swapped, tmp_path, meter=meter).embed(["new", "old"])
    assert got.shape == (2, 16)
    assert swapped.batches == [["new"], ["old"]]  # the stale hit is noticed and redone
    assert meter.usage.cached_calls == 0  # nothing was served from the cache


async def test_legacy_headerless_entries_are_still_read(tmp_path: Path) -> None:
    base = CountingEmbedder(width=4)
    cache = CachedEmbedder(base, tmp_path)
    legacy = cache._legacy.path(cache.key("kept"))
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_bytes(np.arange(4, dtype="<f4").tobytes())
    got = await cache.embed(["kept"])
    assert got.tolist() == [[0.0, 1.0, 2.0, 3.0]] and base.batches == []


def test_cache_dir_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="needs a folder"):
        resolve_embedder("fake", cache_dir=blocker)


# -- single flight ---------------------------------------------------------------------------


@pytest.mark.parametrize("cached", [False, True], ids=["no-cache", "cache"])
async def test_identical_concurrent_batches_are_one_request(tmp_path: Path, cached: bool) -> None:
    base = CountingEmbedder(delay=0.05)
    emb = ManagedEmbedder(base, cache_dir=tmp_path if cached else None, batch_size=64)
    batch = ["x one", "x two", "x three"]
    out = await asyncio.gather(*(emb.embed(batch) for _ in range(6)))
    assert len(base.batches) == 1 and sorted(base.texts) == sorted(batch)
    assert all(np.allclose(o, out[0]) for o in out)
    assert emb.usage.calls == 1 and emb.usage.cached_calls == 5 * len(batch)


async def test_overlapping_batches_send_each_text_once() -> None:
    base = CountingEmbedder(delay=0.05)
    emb = ManagedEmbedder(base)
    a, b = await asyncio.gather(emb.embed(["p", "q", "r"]), emb.embed(["r", "s", "p"]))
    assert sorted(base.texts) == ["p", "q", "r", "s"]
    assert np.allclose(a[0], b[2]) and np.allclose(a[2], b[0])


async def test_a_failed_shared_request_fails_every_waiter_then_is_asked_again() -> None:
    base = CountingEmbedder(delay=0.02)
    base.fail_next = 1
    emb = ManagedEmbedder(base, retries=0)
    results = await asyncio.gather(
        emb.embed(["t"]), emb.embed(["t"]), emb.embed(["t"]), return_exceptions=True
    )
    assert all(isinstance(r, ProviderError) for r in results) and len(base.batches) == 1
    assert (await emb.embed(["t"])).shape == (1, 8) and len(base.batches) == 2


async def test_a_cancelled_caller_does_not_take_the_others_answer() -> None:
    base = CountingEmbedder(delay=0.05)
    emb = ManagedEmbedder(base)
    first = asyncio.ensure_future(emb.embed(["shared"]))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(emb.embed(["shared"]))
    await asyncio.sleep(0.005)
    first.cancel()
    assert (await second).shape == (1, 8) and len(base.batches) == 1
    with pytest.raises(asyncio.CancelledError):
        await first


def test_single_flight_works_across_event_loops() -> None:
    # Callers commonly run several asyncio.run calls with one provider (fit, then predict).
    emb = ManagedEmbedder(FakeEmbedder(dim=16))
    for _ in range(2):
        assert asyncio.run(emb.embed(["same", "same"])).shape == (2, 16)
