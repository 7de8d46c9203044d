"""Model providers: the LLM/Embedder protocols, ``provider:model`` names and managed stacks.

>>> from judgealign.providers import resolve_llm
>>> resolve_llm("fake:constant").name
'fake:constant'
"""

from judgealign.providers.accounting import AccountingEmbedder, AccountingLLM, UsageMeter
from judgealign.providers.cache import CachedEmbedder, CachedLLM
from judgealign.providers.limits import (
    BatchingEmbedder,
    ConcurrencyLimitedEmbedder,
    ConcurrencyLimitedLLM,
    RateLimiter,
)
from judgealign.providers.managed import ManagedEmbedder, ManagedLLM
from judgealign.providers.protocol import LLM, Embedder, FloatMatrix
from judgealign.providers.registry import (
    ProviderRegistry,
    default_registry,
    parse_model_name,
    register_embedder,
    register_llm,
    resolve_embedder,
    resolve_llm,
)
from judgealign.providers.retry import RetryingEmbedder, RetryingLLM, ThrottledError
from judgealign.providers.types import ChatRequest, ChatResponse, Message, Usage

__all__ = [
    "LLM",
    "AccountingEmbedder",
    "AccountingLLM",
    "BatchingEmbedder",
    "CachedEmbedder",
    "CachedLLM",
    "ChatRequest",
    "ChatResponse",
    "ConcurrencyLimitedEmbedder",
    "ConcurrencyLimitedLLM",
    "Embedder",
    "FloatMatrix",
    "ManagedEmbedder",
    "ManagedLLM",
    "Message",
    "ProviderRegistry",
    "RateLimiter",
    "RetryingEmbedder",
    "RetryingLLM",
    "ThrottledError",
    "Usage",
    "UsageMeter",
    "default_registry",
    "parse_model_name",
    "register_embedder",
    "register_llm",
    "resolve_embedder",
    "resolve_llm",
]
