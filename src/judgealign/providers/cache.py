"""On-disk answer caches for LLMs and embedders.

Layout: one file per key in a sharded directory (``<cache_dir>/llm/ab/abcd....json`` and
``<cache_dir>/embed/ab/abcd....emb``, a checked float32 row). Files are written to a
temporary name in the same directory and renamed into place, so readers never see half a file
and two processes (or two tasks) writing the same key both leave a complete, identical answer.

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
import struct
import tempfile
import time
import warnings
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from judgealign.errors import ConfigError, ProviderError
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
        except OSError:
            return None  # missing, or unreadable (a folder, no permission): a miss

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def write(self, key: str, data: bytes) -> None:
        atomic_write(self.path(key), data)


def atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target`` and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_cache_dir(cache_dir: Path | str) -> Path:
    """``cache_dir`` as a Path; ConfigError when it names something that is not a folder
    (every lookup would fail, and every answer would be lost to the cache)."""
    path = Path(cache_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{path}: the response cache needs a folder, not a file; pass another --cache-dir"
        )
    return path


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


class CachedLLM:
    """Answers identical requests from disk; concurrent identical requests share one call."""

    def __init__(self, inner: LLM, cache_dir: Path | str, *, namespace: str | None = None) -> None:
        self.inner = inner
        self.cache_dir = check_cache_dir(cache_dir)
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


# Embedding entries: magic, width, CRC-32 of the float32 row, then the row. A file that is not
# exactly this (disk trouble, a hand edit, another program's file) fails the check and is
# treated as a miss; the width is checked against the one the provider last answered with.
_EMBED_MAGIC = b"JAE1"
_EMBED_HEADER = struct.Struct("<4sII")
_LEGACY_SUFFIX = ".f32"  # headerless rows written before 0.2.1; still read


def encode_row(row: FloatMatrix) -> bytes:
    """One embedding row as a self-checking cache entry (see ``decode_row``)."""
    data = np.ascontiguousarray(row, dtype="<f4").reshape(-1).tobytes()
    return _EMBED_HEADER.pack(_EMBED_MAGIC, len(data) // 4, zlib.crc32(data)) + data


def decode_row(raw: bytes) -> FloatMatrix | None:
    """The row in an entry made by ``encode_row``, or None when it is not one: wrong magic,
    a length that disagrees with the width, a checksum mismatch or a non-finite value.

    >>> row = np.array([0.6, 0.8], dtype=np.float32)
    >>> decode_row(encode_row(row)).tolist()
    [0.6000000238418579, 0.800000011920929]
    >>> decode_row(encode_row(row)[:-1]) is None
    True
    """
    size = _EMBED_HEADER.size
    if len(raw) <= size:
        return None
    magic, width, crc = _EMBED_HEADER.unpack_from(raw)
    data = raw[size:]
    if magic != _EMBED_MAGIC or width == 0 or len(data) != 4 * width or zlib.crc32(data) != crc:
        return None
    return _finite(np.frombuffer(data, dtype="<f4").astype(np.float32))


def _finite(row: FloatMatrix) -> FloatMatrix | None:
    return row if row.size and bool(np.isfinite(row).all()) else None


class CachedEmbedder:
    """Caches one row per text (key: namespace + text); only misses reach ``inner``.

    Hits are recorded as ``cached_calls`` (one per text) in ``meter`` when given.

    A damaged entry, or one whose width is not the width the provider answers with (recorded
    per namespace on every fresh answer, so a model swapped behind the same name is noticed
    too), is never returned: it counts as a miss, is embedded again and overwritten, and
    ``repaired`` counts it. Cached embeddings are derived data, so healing them costs one
    embedding call, where an error would only make the user delete the cache by hand.
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
        self.cache_dir = check_cache_dir(cache_dir)
        self.namespace = namespace
        self.meter = meter
        self.store = ShardedStore(self.cache_dir / "embed", ".emb")
        self._legacy = ShardedStore(self.cache_dir / "embed", _LEGACY_SUFFIX)
        self._width: int | None = None
        self._width_loaded = False
        self.repaired = 0

    @property
    def name(self) -> str:
        return self.inner.name

    def key(self, text: str) -> str:
        return _digest(self.namespace or self.inner.name, text)

    @property
    def _width_path(self) -> Path:
        return self.cache_dir / "embed" / "widths" / f"{_digest(self.namespace or self.name)}.json"

    def width(self) -> int | None:
        """The width the provider last answered with (None before any answer is known)."""
        if not self._width_loaded:
            self._width_loaded = True
            try:
                value = json.loads(self._width_path.read_text(encoding="utf-8")).get("width")
            except (OSError, ValueError, AttributeError):
                value = None  # no record (or an unreadable one): hits must agree among themselves
            self._width = value if isinstance(value, int) and value > 0 else None
        return self._width

    def _record_width(self, width: int) -> None:
        self._width, self._width_loaded = width, True
        record = {"schema_version": SCHEMA_VERSION, "namespace": self.namespace, "width": width}
        try:
            atomic_write(self._width_path, json.dumps(record).encode("utf-8"))
        except OSError as err:
            warnings.warn(
                f"could not record the embedding width under {self.cache_dir}: {err}", stacklevel=2
            )

    def _read(self, text: str) -> FloatMatrix | None:
        key = self.key(text)
        raw = self.store.read(key)
        if raw is not None:
            row = decode_row(raw)
        else:
            legacy = self._legacy.read(key)
            if legacy is None:
                return None
            ok = len(legacy) % 4 == 0
            row = _finite(np.frombuffer(legacy, dtype="<f4").astype(np.float32)) if ok else None
        if row is None:
            self.repaired += 1
        return row

    async def embed(self, texts: Sequence[str]) -> FloatMatrix:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        width = self.width()
        rows: dict[str, FloatMatrix] = {}
        for text in unique:
            row = self._read(text)
            if row is not None and width is not None and row.size != width:
                self.repaired += 1
                row = None
            if row is not None:
                rows[text] = row
        if width is None and len({r.size for r in rows.values()}) > 1:
            # Hits of several widths and no record of the right one: ask the provider.
            self.repaired += len(rows)
            rows = {}
        misses = [t for t in unique if t not in rows]
        fresh = set(misses)
        if misses:
            self._store(misses, await self.inner.embed(misses), rows)
            stale = [t for t, r in rows.items() if r.size != self._width]
            if stale:  # hits of another width than the provider's answer just now
                self.repaired += len(stale)
                fresh.update(stale)
                self._store(stale, await self.inner.embed(stale), rows)
        hits = sum(1 for t in texts if t not in fresh)
        if hits and self.meter is not None:
            self.meter.add(Usage(cached_calls=hits))
        return np.stack([rows[t] for t in texts]).astype(np.float32, copy=False)

    def _store(self, texts: list[str], fresh: FloatMatrix, rows: dict[str, FloatMatrix]) -> None:
        matrix = np.asarray(fresh, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise ProviderError(
                f"{self.name}: asked for {len(texts)} embeddings, got an array of shape "
                f"{matrix.shape}",
                transient=True,
            )
        if matrix.shape[1] != self._width:
            self._record_width(int(matrix.shape[1]))
        for text, row in zip(texts, matrix, strict=True):
            try:
                self.store.write(self.key(text), encode_row(row))
            except OSError as err:
                # A full or read-only disk should cost the cache, not the embedding.
                warnings.warn(
                    f"could not write cache entry under {self.cache_dir}: {err}", stacklevel=2
                )
            rows[text] = row
