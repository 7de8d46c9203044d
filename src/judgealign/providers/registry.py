"""``provider:model?param=value`` names -> providers, and the managed stacks around them.

Built-in providers (``openai``, ``litellm``, ``fake``, ``local``) register exactly like
third-party ones: a factory ``(model, params) -> LLM`` (or ``Embedder``). Third-party packages
add theirs through the entry point groups ``judgealign.llms`` / ``judgealign.embedders``
(entry point name = provider name, value = factory). Everything loads on first lookup, so
importing judgealign never imports an optional backend.

>>> parse_model_name("openai:qwen?base_url=http://127.0.0.1:8080/v1&json_mode=json_object")
('openai', 'qwen', {'base_url': 'http://127.0.0.1:8080/v1', 'json_mode': 'json_object'})
>>> llm = resolve_llm("fake:constant?score=2")
>>> llm.name
'fake:constant'
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from judgealign.errors import ConfigError
from judgealign.providers.managed import ManagedEmbedder, ManagedLLM
from judgealign.providers.protocol import DEFAULT_ATTEMPT_TIMEOUT, LLM, Embedder, Timeout

LLMFactory = Callable[[str, dict[str, str]], LLM]
EmbedderFactory = Callable[[str, dict[str, str]], Embedder]
F = TypeVar("F")

LLM_GROUP = "judgealign.llms"
EMBEDDER_GROUP = "judgealign.embedders"
BUILTIN_PROVIDERS = ("openai", "litellm", "fake", "local")
PROVIDER_RE = re.compile(r"^[a-z][a-z0-9_.-]*$")
# The managed stack's timeout bounds each attempt (120 s unless the model string says
# ``?timeout=``, which then bounds both); the HTTP client's own is only a backstop.
BACKSTOP_TIMEOUT = "600"


def _known() -> str:
    return ", ".join(default_registry.llm_providers())


def parse_model_name(name: str) -> tuple[str, str, dict[str, str]]:
    """Split ``provider:model?k=v&k2=v2`` into ``(provider, model, params)``.

    >>> parse_model_name("local:/models/q.gguf")
    ('local', '/models/q.gguf', {})
    """
    if not isinstance(name, str) or ":" not in name:
        raise ConfigError(
            f"model name {name!r} must look like 'provider:model' (known providers: {_known()})"
        )
    provider, rest = name.strip().split(":", 1)
    provider = provider.strip().lower()
    if not PROVIDER_RE.match(provider):
        raise ConfigError(
            f"model name {name!r} has an invalid provider {provider!r} "
            f"(known providers: {_known()})"
        )
    model, _, query = rest.partition("?")
    params: dict[str, str] = {}
    if query:
        try:
            params = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=True))
        except ValueError:
            raise ConfigError(
                f"model name {name!r}: query {query!r} must be key=value pairs joined by '&'"
            ) from None
    return provider, model.strip(), params


def _check_params(provider: str, params: dict[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ConfigError(
            f"provider {provider!r} does not take {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}"
        )


def _require_model(provider: str, model: str) -> None:
    if not model:
        raise ConfigError(f"provider {provider!r} needs a model: write '{provider}:<model>'")


def _float(provider: str, params: dict[str, str], key: str, default: str) -> float:
    raw = params.get(key, default)
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"provider {provider!r}: {key}={raw!r} is not a number") from None


def _timeouts(provider: str, params: dict[str, str]) -> tuple[float, float]:
    """The HTTP client's timeout and the per-attempt one: ``?timeout=`` sets both."""
    if "timeout" not in params:
        return float(BACKSTOP_TIMEOUT), DEFAULT_ATTEMPT_TIMEOUT
    seconds = _float(provider, params, "timeout", BACKSTOP_TIMEOUT)
    if seconds <= 0:
        raise ConfigError(f"provider {provider!r}: timeout={params['timeout']!r} must be > 0")
    return seconds, seconds


def _api_key(params: dict[str, str]) -> str | None:
    env = params.get("api_key_env")
    if env is None:
        return None  # the provider falls back to OPENAI_API_KEY, or no auth at all
    key = os.environ.get(env)
    if not key:
        raise ConfigError(f"api_key_env={env}: environment variable {env} is not set")
    return key


def _openai_llm(model: str, params: dict[str, str]) -> LLM:
    from judgealign.providers.openai_compat import JSON_MODES, OpenAICompatibleLLM

    _check_params("openai", params, {"base_url", "api_key_env", "json_mode", "timeout"})
    _require_model("openai", model)
    mode = params.get("json_mode", "json_schema")
    if mode not in JSON_MODES:
        raise ConfigError(f"openai: json_mode={mode!r} is invalid; use one of {JSON_MODES}")
    timeout, attempt = _timeouts("openai", params)
    return OpenAICompatibleLLM(
        model,
        base_url=params.get("base_url"),
        api_key=_api_key(params),
        timeout=timeout,
        json_mode=mode,  # type: ignore[arg-type]  # checked against JSON_MODES above
        attempt_timeout=attempt,
    )


def _openai_embedder(model: str, params: dict[str, str]) -> Embedder:
    from judgealign.providers.openai_compat import OpenAICompatibleEmbedder

    _check_params("openai", params, {"base_url", "api_key_env", "timeout"})
    _require_model("openai", model)
    timeout, attempt = _timeouts("openai", params)
    return OpenAICompatibleEmbedder(
        model,
        base_url=params.get("base_url"),
        api_key=_api_key(params),
        timeout=timeout,
        attempt_timeout=attempt,
    )


def _litellm_llm(model: str, params: dict[str, str]) -> LLM:
    from judgealign.providers.litellm_provider import LiteLLMProvider, import_litellm

    _check_params("litellm", params, {"timeout", "json_schema"})
    _require_model("litellm", model)
    import_litellm()  # fail at resolve time, not at the first call
    timeout, attempt = _timeouts("litellm", params)
    return LiteLLMProvider(
        model,
        timeout=timeout,
        attempt_timeout=attempt,
        json_schema=params.get("json_schema", "true").lower() not in ("0", "false", "no"),
    )


def _litellm_embedder(model: str, params: dict[str, str]) -> Embedder:
    from judgealign.providers.litellm_provider import LiteLLMEmbedder, import_litellm

    _check_params("litellm", params, {"timeout"})
    _require_model("litellm", model)
    import_litellm()
    timeout, attempt = _timeouts("litellm", params)
    return LiteLLMEmbedder(model, timeout=timeout, attempt_timeout=attempt)


def _lazy(module: str, attr: str, install: str) -> Callable[[str, dict[str, str]], Any]:
    """A factory that imports ``module.attr`` on first use, turning ImportError into advice."""

    def factory(model: str, params: dict[str, str]) -> Any:
        try:
            mod = importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"{module} could not be imported ({err}); {install}") from None
        factory_fn = getattr(mod, attr, None)
        if factory_fn is None:
            raise ConfigError(f"{module} offers no {attr}; pick another provider for this role")
        return factory_fn(model, params)

    return factory


LOCAL_HINT = "the local provider needs its build: run `make demo` or scripts/install-local.sh .venv"
FAKE_HINT = "reinstall judgealign (judgealign.testing is part of the package)"

BUILTIN_LLMS: dict[str, LLMFactory] = {
    "openai": _openai_llm,
    "litellm": _litellm_llm,
    "fake": _lazy("judgealign.testing.fake", "fake_llm_factory", FAKE_HINT),
    "local": _lazy("judgealign.providers.local", "local_llm_factory", LOCAL_HINT),
}
BUILTIN_EMBEDDERS: dict[str, EmbedderFactory] = {
    "openai": _openai_embedder,
    "litellm": _litellm_embedder,
    "fake": _lazy("judgealign.testing.fake", "fake_embedder_factory", FAKE_HINT),
    "local": _lazy("judgealign.providers.local_embedder", "local_embedder_factory", LOCAL_HINT),
}


def _entry_point_factory(group: str, ep: Any) -> Callable[[str, dict[str, str]], Any]:
    def factory(model: str, params: dict[str, str]) -> Any:
        try:
            loaded = ep.load()
        except Exception as err:
            raise ConfigError(
                f"entry point {ep.name!r} in {group} ({ep.value}) failed to load: {err}"
            ) from None
        return loaded(model, params)

    return factory


class ProviderRegistry:
    """Provider name -> factory, for LLMs and embedders.

    Explicit ``register_*`` calls win over entry points, which never replace built-ins.

    >>> reg = ProviderRegistry()
    >>> reg.register_llm("mine", lambda model, params: resolve_llm("fake:" + model).base)
    >>> reg.create_llm("mine:lenient").name
    'fake:lenient'
    """

    def __init__(self, *, builtins: bool = True, plugins: bool = True) -> None:
        self.builtins = builtins
        self.plugins = plugins
        self._llms: dict[str, LLMFactory] = {}
        self._embedders: dict[str, EmbedderFactory] = {}
        self._lock = threading.RLock()
        self._loaded = False

    def register_llm(self, provider: str, factory: LLMFactory) -> None:
        self._register(self._llms, provider, factory)

    def register_embedder(self, provider: str, factory: EmbedderFactory) -> None:
        self._register(self._embedders, provider, factory)

    def _register(self, table: dict[str, F], provider: str, factory: F) -> None:
        if not PROVIDER_RE.match(provider):
            raise ConfigError(
                f"provider name {provider!r} must be lowercase letters, digits, '_', '-' or '.'"
            )
        with self._lock:
            table[provider] = factory

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded:
                return
            self._loaded = True
            if self.builtins:
                for name, llm in BUILTIN_LLMS.items():
                    self._llms.setdefault(name, llm)
                for name, emb in BUILTIN_EMBEDDERS.items():
                    self._embedders.setdefault(name, emb)
            if self.plugins:
                for ep in entry_points(group=LLM_GROUP):
                    self._llms.setdefault(ep.name, _entry_point_factory(LLM_GROUP, ep))
                for ep in entry_points(group=EMBEDDER_GROUP):
                    self._embedders.setdefault(ep.name, _entry_point_factory(EMBEDDER_GROUP, ep))

    def llm_providers(self) -> list[str]:
        self._ensure_loaded()
        with self._lock:
            return sorted(self._llms)

    def embedder_providers(self) -> list[str]:
        self._ensure_loaded()
        with self._lock:
            return sorted(self._embedders)

    def create_llm(self, name: str) -> LLM:
        """Build the bare provider for ``name`` (no cache, retries or limits)."""
        provider, model, params = parse_model_name(name)
        self._ensure_loaded()
        factory = self._llms.get(provider)
        if factory is None:
            raise ConfigError(
                f"unknown LLM provider {provider!r} in {name!r}; "
                f"known: {', '.join(self.llm_providers())}"
            )
        llm = factory(model, params)
        if not isinstance(llm, LLM):
            raise ConfigError(
                f"the factory for {provider!r} returned {type(llm).__name__}, not an LLM"
            )
        return llm

    def create_embedder(self, name: str) -> Embedder:
        """Build the bare embedder for ``name`` (no cache, batching or retries)."""
        provider, model, params = parse_model_name(name)
        self._ensure_loaded()
        factory = self._embedders.get(provider)
        if factory is None:
            raise ConfigError(
                f"unknown embedder provider {provider!r} in {name!r}; "
                f"known: {', '.join(self.embedder_providers())}"
            )
        emb = factory(model, params)
        if not isinstance(emb, Embedder):
            raise ConfigError(
                f"the factory for {provider!r} returned {type(emb).__name__}, not an Embedder"
            )
        return emb


default_registry = ProviderRegistry()


def register_llm(provider: str, factory: LLMFactory) -> None:
    """Register an LLM factory ``(model, params) -> LLM`` in the default registry."""
    default_registry.register_llm(provider, factory)


def register_embedder(provider: str, factory: EmbedderFactory) -> None:
    """Register an embedder factory ``(model, params) -> Embedder`` in the default registry."""
    default_registry.register_embedder(provider, factory)


def resolve_llm(
    name_or_llm: str | LLM,
    *,
    cache_dir: Path | str | None = None,
    retries: int = 3,
    concurrency: int = 8,
    timeout: Timeout = "auto",
    rate_per_minute: float | None = None,
    registry: ProviderRegistry | None = None,
) -> ManagedLLM:
    """A managed LLM (cache, limits, retries, accounting) from a name or an LLM object.

    A ``ManagedLLM`` is returned unchanged. ``timeout`` bounds each attempt; ``"auto"``: the
    model string's ``?timeout=`` where given, else 120 s for network providers and no bound
    for the in-process local model.

    >>> resolve_llm("fake:lenient", concurrency=2).usage.calls
    0
    """
    if isinstance(name_or_llm, ManagedLLM):
        return name_or_llm
    if isinstance(name_or_llm, str):
        base = (registry or default_registry).create_llm(name_or_llm)
        namespace = name_or_llm.strip()
    elif isinstance(name_or_llm, LLM):
        base, namespace = name_or_llm, name_or_llm.name
    else:
        raise ConfigError(
            f"expected a model name like 'openai:gpt-4.1-mini' or an LLM, "
            f"got {type(name_or_llm).__name__}"
        )
    return ManagedLLM(
        base,
        cache_dir=cache_dir,
        retries=retries,
        concurrency=concurrency,
        timeout=timeout,
        rate_per_minute=rate_per_minute,
        namespace=namespace,
    )


def resolve_embedder(
    name_or_embedder: str | Embedder,
    *,
    cache_dir: Path | str | None = None,
    retries: int = 3,
    concurrency: int = 4,
    batch_size: int = 64,
    timeout: Timeout = "auto",
    registry: ProviderRegistry | None = None,
) -> ManagedEmbedder:
    """A managed embedder (per-text cache, batching, retries, accounting).

    >>> import asyncio
    >>> asyncio.run(resolve_embedder("fake").embed(["a b", "c"])).shape[0]
    2
    """
    if isinstance(name_or_embedder, ManagedEmbedder):
        return name_or_embedder
    if isinstance(name_or_embedder, str):
        text = name_or_embedder.strip()
        # A bare provider ("fake", "local") means its default embedding model.
        spec = text if ":" in text else f"{text}:"
        base = (registry or default_registry).create_embedder(spec)
        namespace = text
    elif isinstance(name_or_embedder, Embedder):
        base, namespace = name_or_embedder, name_or_embedder.name
    else:
        raise ConfigError(
            f"expected an embedder name like 'openai:text-embedding-3-small' or an Embedder, "
            f"got {type(name_or_embedder).__name__}"
        )
    return ManagedEmbedder(
        base,
        cache_dir=cache_dir,
        retries=retries,
        concurrency=concurrency,
        batch_size=batch_size,
        timeout=timeout,
        namespace=namespace,
    )
