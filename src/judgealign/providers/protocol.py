"""The two behaviours every provider implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from judgealign.providers.types import ChatRequest, ChatResponse

FloatMatrix = npt.NDArray[np.float32]

# How long the managed stack lets one call attempt run before it retries. A provider may set
# an ``attempt_timeout`` attribute (seconds, or None for no bound) to override it.
DEFAULT_ATTEMPT_TIMEOUT = 120.0
Timeout = float | None | Literal["auto"]


def attempt_timeout(provider: object, timeout: Timeout = "auto") -> float | None:
    """The per-attempt timeout for ``provider``: ``timeout`` unless it is ``"auto"``, then the
    provider's own ``attempt_timeout`` attribute, else 120 s.

    In-process models declare ``None``: abandoning a running llama.cpp call does not stop it,
    so a timed-out attempt's retry would only queue behind the work it gave up on.

    >>> class InProcess:
    ...     attempt_timeout = None
    >>> attempt_timeout(InProcess()), attempt_timeout(object()), attempt_timeout(object(), 5.0)
    (None, 120.0, 5.0)
    """
    if timeout != "auto":
        return timeout
    value = getattr(provider, "attempt_timeout", DEFAULT_ATTEMPT_TIMEOUT)
    return None if value is None else float(value)


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
