"""Per-item rendered texts and embeddings, computed once per judge and reused."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from judgealign.data.item import Item
from judgealign.providers.protocol import Embedder

# Small embedders see ~256 word pieces; embedding chunks and averaging lets the whole
# document count instead of only its first cells (a notebook's imports).
CHUNK_WORDS = 160
MAX_CHUNKS = 24


def chunk_words(text: str, size: int = CHUNK_WORDS, max_chunks: int = MAX_CHUNKS) -> list[str]:
    words = text.split()
    if not words:
        return [""]
    chunks = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    if len(chunks) > max_chunks:
        # Keep an even spread over the document rather than its head.
        idx = np.linspace(0, len(chunks) - 1, max_chunks).round().astype(int)
        chunks = [chunks[i] for i in sorted(set(idx.tolist()))]
    return chunks


async def embed_documents(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """One L2-normalized vector per text: the normalized mean of its chunk embeddings."""
    pieces: list[str] = []
    owners: list[int] = []
    for n, text in enumerate(texts):
        for chunk in chunk_words(text):
            pieces.append(chunk)
            owners.append(n)
    if not pieces:
        return np.zeros((0, 1), dtype=np.float32)
    vecs = np.asarray(await embedder.embed(pieces), dtype=np.float32)
    out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
    np.add.at(out, np.asarray(owners), vecs)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


class ItemTexts:
    """Caches item renders (per budget) and document embeddings (per embedder)."""

    def __init__(self) -> None:
        self._texts: dict[tuple[str, int], str] = {}
        self._vectors: dict[tuple[str, str, int], np.ndarray] = {}

    def item_text(self, item: Item, budget_tokens: int) -> str:
        from judgealign.render import render_item

        key = (item.id, budget_tokens)
        if key not in self._texts:
            self._texts[key] = render_item(item, budget_tokens=budget_tokens)
        return self._texts[key]

    def episode_text(self, item: Item, budget_tokens: int) -> str:
        return self.item_text(item, budget_tokens)

    async def embed(
        self, embedder: Embedder, items: Sequence[Item], budget_tokens: int
    ) -> dict[str, np.ndarray]:
        missing = [it for it in items if (embedder.name, it.id, budget_tokens) not in self._vectors]
        if missing:
            texts = [self.item_text(it, budget_tokens) for it in missing]
            vecs = await embed_documents(embedder, texts)
            for it, v in zip(missing, vecs, strict=True):
                self._vectors[(embedder.name, it.id, budget_tokens)] = v
        return {it.id: self._vectors[(embedder.name, it.id, budget_tokens)] for it in items}
