"""The two behaviours every provider implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from judgealign.providers.types import ChatRequest, ChatResponse

FloatMatrix = npt.NDArray[np.float32]


@runtime_checkable
class LLM(Protocol):
    """A chat model. ``complete`` raises ProviderError (``transient=True`` when worth retrying)."""

    @property
    def name(self) -> str:
        """``provider:model`` as given to the registry."""
        ...

    async def complete(self, request: ChatRequest) -> ChatResponse: ...


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 rows (shape ``(len(texts), dim)``)."""

    @property
    def name(self) -> str: ...

    async def embed(self, texts: Sequence[str]) -> FloatMatrix: ...
