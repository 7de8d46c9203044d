"""On-disk answer caches for LLMs and embedders.

Layout: one file per key in a sharded directory (``<cache_dir>/llm/ab/abcd....json`` and
``<cache_dir>/embed/ab/abcd....f32``). Files are written to a temporary name in the same
directory and renamed into place, so readers never see half a file and two processes (or two
tasks) writing the same key both leave a complete, identical answer.

The key is the SHA-256 of the cache namespace (the provider name, by default) and
``ChatRequest.cache_key()``: the same request to two models never collides, and anything in
the request (temperature, seed, schema, tag) changes the key.

A hit returns the stored response with ``cached=True`` and ``usage`` counting nothing spent
now: ``cached_calls=1`` and the original token counts in ``cached_*_tokens``. Totals then
count the tokens spent *now* and, apart, what the cache saved. The original response stays in
the file and is available from :meth:`CachedLLM.stored`.

>>> import asyncio, tempfile
>>> from judgealign.testing.fake import FakeLLM
>>> from judgealign.providers.types import ChatRequest, Message
>>> llm = CachedLLM(FakeLLM("constant"), tempfile.mkdtemp())
>>> req = ChatRequest(model="m", messages=(Message(role="user", content="hi"),))
>>> [asyncio.run(llm.complete(req)).cached for _ in range(2)]
[False, True]
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from judgealign.providers.accounting import UsageMeter
from judgealign.providers.protocol import LLM, Embedder, FloatMatrix
from judgealign.providers.types import ChatRequest, ChatResponse, Usage

SCHEMA_VERSION = 1


class ShardedStore:
    """Key -> bytes in ``root/<key[:2]>/<key><suffix>`` with atomic writes."""

    def __init__(self, root: Path | str, suffix: str) -> None:
        self.root = Path(root)
        self.suffix = suffix

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}{self.suffix}"

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def write(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=self.suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


class CachedLLM:
    """Answers identical requests from disk; concurrent identical requests share one call."""

    def __init__(self, inner: LLM, cache_dir: Path | str, *, namespace: str | None = None) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.namespace = namespace
        self.store = ShardedStore(self.cache_dir / "llm", ".json")
        self._inflight: dict[str, asyncio.Future[ChatResponse]] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    def key(self, request: ChatRequest) -> str:
        return _digest(self.namespace or self.inner.name, request.cache_key())

    def stored(self, request: ChatRequest) -> ChatResponse | None:
        """The stored response as originally received (its real usage), or None."""
        raw = self.store.read(self.key(request))
        if raw is None:
            return None
        try:
            return ChatResponse.model_validate(json.loads(raw)["response"])
        except (ValueError, KeyError, TypeError):
            return None  # unreadable entry (old schema, disk trouble): treat as a miss

    def discard(self, request: ChatRequest) -> None:
        """Forget the stored answer to ``request`` (one the caller could not use, such as
        an unreadable judgement), so the next run asks again instead of replaying it."""
        self.store.delete(self.key(request))

    async def complete(self, request: ChatRequest) -> ChatResponse:
        key = self.key(request)
        hit = self.stored(request)
        if hit is not None:
            return _as_hit(hit)
        pending = self._inflight.get(key)
        if pending is not None:
            return _as_hit(await asyncio.shield(pending))
        future: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            response = await self.inner.complete(request)
        except BaseException as err:
            if isinstance(err, Exception):
                future.set_exception(err)
                future.exception()  # mark retrieved: nobody may be waiting
            else:
                future.cancel()
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(response)
        try:
            self._save(key, request, response)
        except OSError as err:
            # A full or read-only disk should cost the cache, not the answer.
            warnings.warn(
                f"could not write cache entry under {self.cache_dir}: {err}", stacklevel=2
            )
        return response

    def _save(self, key: str, request: ChatRequest, response: ChatResponse) -> None:
        entry = {
            "schema_version": SCHEMA_VERSION,
            "namespace": self.namespace or self.inner.name,
            "created": time.time(),
            "request": request.model_dump(mode="json"),
            "response": response.model_dump(mode="json"),
        }
        self.store.write(key, json.dumps(entry, ensure_ascii=False).encode("utf-8"))


def _as_hit(response: ChatResponse) -> ChatResponse:
    spent = response.usage
    hit = Usage(
        cached_calls=1,
        cached_prompt_tokens=spent.prompt_tokens,
        cached_completion_tokens=spent.completion_tokens,
    )
    return response.model_copy(update={"cached": True, "usage": hit})


class CachedEmbedder:
    """Caches one row per text (key: namespace + text); only misses reach ``inner``.

    Hits are recorded as ``cached_calls`` (one per text) in ``meter`` when given.
    """

    def __init__(
        self,
        inner: Embedder,
        cache_dir: Path | str,
        *,
        namespace: str | None = None,
        meter: UsageMeter | None = None,
    ) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.namespace = namespace
        self.meter = meter
        self.store = ShardedStore(self.cache_dir / "embed", ".f32")

    @property
    def name(self) -> str:
        return self.inner.name

    def key(self, text: str) -> str:
        return _digest(self.namespace or self.inner.name, text)

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        rows: dict[str, FloatMatrix] = {}
        for text in dict.fromkeys(texts):
            raw = self.store.read(self.key(text))
            if raw is not None and len(raw) % 4 == 0 and raw:
                rows[text] = np.frombuffer(raw, dtype=np.float32)
        hits = sum(1 for t in texts if t in rows)
        if hits and self.meter is not None:
            self.meter.add(Usage(cached_calls=hits))
        misses = [t for t in dict.fromkeys(texts) if t not in rows]
        if misses:
            fresh = np.asarray(await self.inner.embed(misses), dtype=np.float32)
            for text, row in zip(misses, fresh, strict=True):
                self.store.write(self.key(text), row.tobytes())
                rows[text] = row
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([rows[t] for t in texts]).astype(np.float32, copy=False)
