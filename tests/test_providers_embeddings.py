"""Embedders over the local test server, and the ManagedEmbedder stack."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from judgealign.errors import ProviderError
from judgealign.providers.managed import ManagedEmbedder
from judgealign.providers.openai_compat import OpenAICompatibleEmbedder
from judgealign.providers.protocol import FloatMatrix
from judgealign.providers.registry import resolve_embedder
from judgealign.testing.server import OpenAICompatServer, hashed_embedding


@pytest.fixture
def server() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer() as srv:
        yield srv


def embed_requests(srv: OpenAICompatServer) -> list[list[str]]:
    return [r.body["input"] for r in srv.requests if r.path.endswith("/embeddings") and r.body]


async def test_openai_embedder_over_server(server: OpenAICompatServer) -> None:
    emb = OpenAICompatibleEmbedder("emb-model", base_url=server.base_url, api_key="")
    out = await emb.embed(["impute before split", "leakage in the scaler"])
    assert out.dtype == np.float32 and out.shape == (2, 64)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.allclose(out[0], hashed_embedding("impute before split"), atol=1e-6)
    assert embed_requests(server) == [["impute before split", "leakage in the scaler"]]
    assert server.requests[0].body is not None
    assert server.requests[0].body["model"] == "emb-model"
    assert emb.name == "openai:emb-model"


async def test_embedder_via_registry_name(server: OpenAICompatServer) -> None:
    emb = resolve_embedder(f"openai:e?base_url={server.base_url}", batch_size=2)
    out = await emb.embed(["a", "b", "c"])
    assert out.shape == (3, 64)
    assert sorted(len(b) for b in embed_requests(server)) == [1, 2]


async def test_managed_embedder_caches_per_text(server: OpenAICompatServer, tmp_path: Path) -> None:
    base = OpenAICompatibleEmbedder("e", base_url=server.base_url, api_key="")
    emb = ManagedEmbedder(base, cache_dir=tmp_path, batch_size=2)
    first = await emb.embed(["a", "b", "c", "a"])
    assert np.allclose(first[0], first[3])
    assert sorted(t for b in embed_requests(server) for t in b) == ["a", "b", "c"]
    assert emb.usage.calls == 2 and emb.usage.cached_calls == 0

    second = await emb.embed(["c", "d", "a"])
    assert embed_requests(server)[-1] == ["d"]  # only the miss is sent
    assert np.allclose(second[0], first[2]) and np.allclose(second[2], first[0])
    assert emb.usage.calls == 3 and emb.usage.cached_calls == 2

    again = ManagedEmbedder(
        OpenAICompatibleEmbedder("e", base_url=server.base_url, api_key=""), cache_dir=tmp_path
    )
    n_before = len(embed_requests(server))
    third = await again.embed(["a", "b", "c", "d"])
    assert len(embed_requests(server)) == n_before
    assert again.usage.cached_calls == 4 and again.usage.calls == 0
    assert np.allclose(third[:3], first[:3])
    emb.reset()
    assert emb.usage.calls == 0


class FlakyEmbedder:
    """Fails transiently once, returns unnormalized rows, records batches and concurrency."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.failed = False
        self.in_flight = 0
        self.max_in_flight = 0

    @property
    def name(self) -> str:
        return "flaky:e"

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if not self.failed:
            self.failed = True
            raise ProviderError("try again", transient=True, status=503)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        self.batches.append(list(texts))
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)


async def test_managed_embedder_retries_batches_limits_and_normalizes() -> None:
    base = FlakyEmbedder()
    emb = ManagedEmbedder(base, batch_size=3, concurrency=2, base_delay=0.001)
    texts = [f"text {i}" * (i + 1) for i in range(10)]
    out = await emb.embed(texts)
    assert out.shape == (10, 2) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    assert sorted(len(b) for b in base.batches) == [1, 3, 3, 3]
    assert base.max_in_flight <= 2
    assert emb.usage.calls == 4 and emb.usage.prompt_tokens > 0


async def test_empty_input() -> None:
    emb = resolve_embedder("fake")
    assert (await emb.embed([])).shape[0] == 0
