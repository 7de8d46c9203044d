"""Provider names, the registry and resolve_llm / resolve_embedder."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pytest

from judgealign.errors import ConfigError, ProviderError
from judgealign.providers import registry as registry_module
from judgealign.providers.managed import ManagedEmbedder, ManagedLLM
from judgealign.providers.openai_compat import OpenAICompatibleEmbedder, OpenAICompatibleLLM
from judgealign.providers.registry import (
    ProviderRegistry,
    parse_model_name,
    resolve_embedder,
    resolve_llm,
)
from judgealign.providers.types import ChatRequest, ChatResponse, Message


class EchoLLM:
    def __init__(self, name: str = "echo:x") -> None:
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(text=request.messages[-1].content)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("openai:gpt-4.1-mini", ("openai", "gpt-4.1-mini", {})),
        ("fake:constant?score=2", ("fake", "constant", {"score": "2"})),
        ("local:default", ("local", "default", {})),
        ("local:/path/to/model.gguf", ("local", "/path/to/model.gguf", {})),
        ("litellm:anthropic/claude-3-5-haiku", ("litellm", "anthropic/claude-3-5-haiku", {})),
        (
            "openai:qwen?base_url=http://127.0.0.1:8080/v1&json_mode=json_object",
            (
                "openai",
                "qwen",
                {"base_url": "http://127.0.0.1:8080/v1", "json_mode": "json_object"},
            ),
        ),
        ("OpenAI:m", ("openai", "m", {})),
        ("fake:", ("fake", "", {})),
    ],
)
def test_parse_model_name(name: str, expected: tuple[str, str, dict[str, str]]) -> None:
    assert parse_model_name(name) == expected


@pytest.mark.parametrize("bad", ["gpt-4", "", "9x:model", "open ai:m", "fake:m?novalue"])
def test_bad_names_give_one_line_config_error(bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_model_name(bad)
    msg = str(info.value)
    assert "\n" not in msg
    if "query" not in msg:
        assert "openai" in msg and "fake" in msg  # lists the known providers


def test_unknown_provider_lists_known() -> None:
    with pytest.raises(ConfigError, match=r"unknown LLM provider 'nope'.*openai") as info:
        resolve_llm("nope:model")
    assert "local" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="unknown embedder provider"):
        resolve_embedder("nope:model")


def test_register_custom_provider_on_own_registry() -> None:
    reg = ProviderRegistry(plugins=False)
    seen: list[tuple[str, dict[str, str]]] = []

    def factory(model: str, params: dict[str, str]) -> EchoLLM:
        seen.append((model, params))
        return EchoLLM(f"echo:{model}")

    reg.register_llm("echo", factory)
    llm = resolve_llm("echo:abc?k=v", registry=reg, concurrency=2)
    assert isinstance(llm, ManagedLLM) and llm.name == "echo:abc"
    assert seen == [("abc", {"k": "v"})]
    assert "echo" in reg.llm_providers() and "openai" in reg.llm_providers()
    with pytest.raises(ConfigError):
        reg.register_llm("Bad Name", factory)


def test_factory_must_return_an_llm() -> None:
    reg = ProviderRegistry(plugins=False)
    reg.register_llm("odd", lambda model, params: object())  # type: ignore[arg-type,return-value]
    with pytest.raises(ConfigError, match="not an LLM"):
        reg.create_llm("odd:x")


def test_module_level_register(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = ProviderRegistry(plugins=False)
    monkeypatch.setattr(registry_module, "default_registry", reg)
    registry_module.register_llm("echo", lambda m, p: EchoLLM())
    registry_module.register_embedder("echo", lambda m, p: OpenAICompatibleEmbedder(m))
    assert resolve_llm("echo:x").name == "echo:x"
    assert resolve_embedder("echo:e").name == "openai:e"


@dataclass
class FakeEntryPoint:
    name: str
    value: str
    target: Any

    def load(self) -> Any:
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


def test_entry_points_are_loaded_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    eps = {
        "judgealign.llms": [
            FakeEntryPoint("plug", "pkg:factory", lambda m, p: EchoLLM(f"plug:{m}")),
            FakeEntryPoint("broken", "pkg:missing", ImportError("no pkg")),
            FakeEntryPoint("openai", "evil:override", lambda m, p: EchoLLM()),
        ],
        "judgealign.embedders": [],
    }
    monkeypatch.setattr(registry_module, "entry_points", lambda group: eps[group])
    reg = ProviderRegistry()
    assert reg.create_llm("plug:m").name == "plug:m"
    assert isinstance(reg.create_llm("openai:m"), OpenAICompatibleLLM)  # built-ins win
    with pytest.raises(ConfigError, match=r"entry point 'broken'.*failed to load"):
        reg.create_llm("broken:m")


def test_resolve_accepts_objects_and_managed() -> None:
    managed = resolve_llm(EchoLLM())
    assert managed.name == "echo:x" and isinstance(managed.base, EchoLLM)
    assert resolve_llm(managed) is managed
    with pytest.raises(ConfigError, match="expected a model name"):
        resolve_llm(42)  # type: ignore[arg-type]
    emb = resolve_embedder("fake:?dim=16")
    assert isinstance(emb, ManagedEmbedder) and resolve_embedder(emb) is emb


async def test_fake_provider_through_registry() -> None:
    llm = resolve_llm("fake:constant")
    request = ChatRequest(model="m", messages=(Message(role="user", content="hi"),))
    assert (await llm.complete(request)).text == "ok"
    assert llm.usage.calls == 1
    vectors = await resolve_embedder("fake").embed(["a b", "c"])
    assert vectors.shape == (2, 256)


def test_openai_factory_params(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm = resolve_llm("openai:qwen?base_url=http://127.0.0.1:9/v1&json_mode=json_object").base
    assert isinstance(llm, OpenAICompatibleLLM)
    assert llm.base_url == "http://127.0.0.1:9/v1" and llm.json_mode == "json_object"
    assert llm.api_key is None
    monkeypatch.setenv("MY_KEY", "sk-mine")
    keyed = resolve_llm("openai:m?api_key_env=MY_KEY&timeout=5").base
    assert isinstance(keyed, OpenAICompatibleLLM)
    assert keyed.api_key == "sk-mine" and keyed.timeout == 5.0
    with pytest.raises(ConfigError, match="does not take colour"):
        resolve_llm("openai:m?colour=red")
    with pytest.raises(ConfigError, match="json_mode"):
        resolve_llm("openai:m?json_mode=yaml")
    with pytest.raises(ConfigError, match="MISSING_KEY"):
        resolve_llm("openai:m?api_key_env=MISSING_KEY")
    with pytest.raises(ConfigError, match="not a number"):
        resolve_llm("openai:m?timeout=soon")
    with pytest.raises(ConfigError, match="must be > 0"):
        resolve_llm("openai:m?timeout=0")
    with pytest.raises(ConfigError, match="needs a model"):
        resolve_llm("openai:")


def test_missing_optional_backends_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # makes `import litellm` fail
    with pytest.raises(ConfigError, match=r"pip install 'judgealign\[litellm\]'"):
        resolve_llm("litellm:anthropic/claude-3-5-haiku")
    monkeypatch.setitem(sys.modules, "judgealign.providers.local", None)
    monkeypatch.setitem(sys.modules, "judgealign.providers.local_embedder", None)
    with pytest.raises(ConfigError, match=r"scripts/install-local\.sh"):
        resolve_llm("local:default")
    with pytest.raises(ConfigError, match=r"scripts/install-local\.sh"):
        resolve_embedder("local:default")


def test_provider_module_without_factory_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    monkeypatch.setitem(
        sys.modules, "judgealign.providers.local_embedder", types.ModuleType("stub")
    )
    with pytest.raises(ConfigError, match="offers no local_embedder_factory"):
        resolve_embedder("local:default")


def test_model_string_timeout_bounds_each_attempt() -> None:
    # ?timeout= used to reach only the HTTP client while the managed stack still gave up at
    # 120 s; now it sets both, and without it network providers keep the 120 s default.
    from judgealign.providers.local import LocalLLM
    from judgealign.providers.local_embedder import LocalEmbedder
    from judgealign.providers.protocol import attempt_timeout

    assert attempt_timeout(resolve_llm("openai:m?timeout=900").base) == 900.0
    assert attempt_timeout(resolve_embedder("openai:e?timeout=45").base) == 45.0
    plain = resolve_llm("openai:m").base
    assert isinstance(plain, OpenAICompatibleLLM)
    assert attempt_timeout(plain) == 120.0 and plain.timeout == 600.0
    # The embedded model runs in this process: no bound (constructing it loads nothing).
    assert attempt_timeout(LocalLLM("model.gguf")) is None
    assert attempt_timeout(LocalEmbedder()) is None


async def test_slow_endpoint_passes_with_a_raised_timeout() -> None:
    from judgealign.testing.server import OpenAICompatServer

    request = ChatRequest(model="m", messages=(Message(role="user", content="hi"),))
    with OpenAICompatServer(delay=0.3) as srv:
        cut = resolve_llm(f"openai:m?base_url={srv.base_url}&timeout=0.1", retries=0)
        with pytest.raises(ProviderError, match=r"no answer within 0\.1s"):
            await cut.complete(request)
        patient = resolve_llm(f"openai:m?base_url={srv.base_url}&timeout=5", retries=0)
        assert (await patient.complete(request)).text
