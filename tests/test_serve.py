"""The OpenAI-compatible endpoint (judgealign.serve) with fake providers, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from judgealign.errors import ConfigError, ProviderError
from judgealign.judge.prompt import judgement_schema
from judgealign.providers.registry import resolve_embedder, resolve_llm
from judgealign.providers.types import ChatRequest, Message
from judgealign.rubric.model import Scale
from judgealign.serve import BadRequest, ModelServer, chat_request_from_body
from judgealign.testing.fake import FakeLLM

SCHEMA = judgement_schema(Scale(min=1, max=3, anchors={1: "bad", 2: "ok", 3: "good"}))


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer("fake:constant", "fake") as srv:
        yield srv


def chat_body(**extra: object) -> dict[str, object]:
    return {
        "model": "whatever",
        "messages": [
            {"role": "system", "content": "You judge."},
            {"role": "user", "content": [{"type": "text", "text": "rate this"}]},
        ],
        **extra,
    }


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "json_schema", "json_schema": {"name": "judgement", "schema": SCHEMA}},
        {"type": "json_object", "schema": SCHEMA},
    ],
)
def test_chat_maps_both_structured_output_forms(
    server: ModelServer, fmt: dict[str, object]
) -> None:
    resp = httpx.post(
        server.base_url + "/chat/completions",
        json=chat_body(response_format=fmt, temperature=0.3, max_tokens=50, seed=7),
    )
    assert resp.status_code == 200
    body = resp.json()
    answer = json.loads(body["choices"][0]["message"]["content"])
    assert answer["score"] == 2  # fake:constant picks the middle of the schema's enum
    assert body["model"] == "whatever"
    assert body["usage"]["prompt_tokens"] > 0
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )
    stats = server.stats()
    assert stats.chat.calls == 1
    assert stats.chat.prompt_tokens == body["usage"]["prompt_tokens"]


def test_request_mapping_details() -> None:
    req = chat_request_from_body(
        chat_body(
            response_format={"type": "json_schema", "json_schema": {"schema": SCHEMA}},
            temperature=0.5,
            max_completion_tokens=33,
            seed=3,
        ),
        "fake:constant",
    )
    assert req.json_schema == SCHEMA
    assert (req.temperature, req.max_tokens, req.seed) == (0.5, 33, 3)
    assert [m.role for m in req.messages] == ["system", "user"]
    assert req.messages[1].content == "rate this"
    plain = chat_request_from_body({"messages": [{"role": "developer", "content": "x"}]}, "m")
    assert plain.json_schema is None and plain.messages[0].role == "system"
    loose = chat_request_from_body(chat_body(response_format={"type": "json_object"}), "m")
    assert loose.json_schema == {"type": "object"}


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"role": "tool", "content": "x"}]},
        {"messages": [{"role": "user", "content": "x"}], "stream": True},
        {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}},
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": "many"},
    ],
)
def test_bad_requests_are_400(server: ModelServer, body: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        chat_request_from_body(body, "m")
    resp = httpx.post(server.base_url + "/chat/completions", json=body)
    assert resp.status_code == 400
    assert resp.json()["error"]["message"]
    assert server.stats().errors == 1


def test_embeddings_and_models(server: ModelServer) -> None:
    resp = httpx.post(
        server.base_url + "/embeddings", json={"model": "e", "input": ["a b c", "a b c", "zzz"]}
    )
    assert resp.status_code == 200
    rows = np.asarray([d["embedding"] for d in resp.json()["data"]])
    assert rows.shape[0] == 3
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert rows[0] @ rows[1] == pytest.approx(1.0, abs=1e-5)
    single = httpx.post(server.base_url + "/embeddings", json={"input": "one text"})
    assert len(single.json()["data"]) == 1
    bad = httpx.post(server.base_url + "/embeddings", json={"input": [[1, 2, 3]]})
    assert bad.status_code == 400
    ids = [m["id"] for m in httpx.get(server.base_url + "/models").json()["data"]]
    assert ids == ["fake:constant", "fake"]
    stats = httpx.get(server.base_url + "/stats").json()
    assert stats["embeddings"]["calls"] == 2 and stats["embeddings"]["texts"] == 4


def test_embeddings_without_embedder_is_400() -> None:
    with ModelServer("fake:constant") as srv:
        resp = httpx.post(srv.base_url + "/embeddings", json={"input": "x"})
        assert resp.status_code == 400
        assert "embedder" in resp.json()["error"]["message"]


def test_provider_errors_become_http_errors() -> None:
    def boom(request: ChatRequest) -> str:
        raise ValueError("not this one")

    with ModelServer(FakeLLM("script", handler=boom), retries=0) as srv:
        resp = httpx.post(srv.base_url + "/chat/completions", json=chat_body())
        assert resp.status_code == 500
        assert "not this one" in resp.json()["error"]["message"]
    failing = FakeLLM("script", script=[ProviderError("upstream down", transient=True)])
    with ModelServer(failing, retries=0) as srv:
        resp = httpx.post(srv.base_url + "/chat/completions", json=chat_body())
        assert resp.status_code == 503
        assert "upstream down" in resp.json()["error"]["message"]
        raw = httpx.post(
            srv.base_url + "/chat/completions",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert raw.status_code == 400
        assert httpx.get(srv.base_url + "/nowhere").status_code == 404
        assert srv.stats().errors == 2


def test_max_tokens_cap_bounds_requests() -> None:
    seen: list[int | None] = []

    def record(request: ChatRequest) -> str:
        seen.append(request.max_tokens)
        return "ok"

    with ModelServer(FakeLLM("script", handler=record), max_tokens_cap=64) as srv:
        for ask in (10, 5000):
            httpx.post(srv.base_url + "/chat/completions", json=chat_body(max_tokens=ask))
    assert seen == [10, 64]


def test_our_openai_provider_talks_to_it(server: ModelServer) -> None:
    llm = resolve_llm(f"openai:served?base_url={server.base_url}", retries=0)
    emb = resolve_embedder(f"openai:served?base_url={server.base_url}", retries=0)
    req = ChatRequest(
        model="served",
        messages=(Message(role="user", content="rate this"),),
        json_schema=SCHEMA,
    )

    async def go() -> tuple[str, np.ndarray]:
        resp = await llm.complete(req)
        vecs = await emb.embed(["first text", "second text"])
        return resp.text, vecs

    text, vecs = asyncio.run(go())
    assert json.loads(text)["score"] == 2
    assert vecs.shape[0] == 2
    assert llm.usage.calls == 1
    # the provider's default json_schema mode reached the server as a schema
    assert server.stats().chat.calls == 1


def test_cli_refuses_non_loopback_and_busy_ports() -> None:
    import typer
    from typer.testing import CliRunner

    from judgealign.cli.serve_cmd import serve

    app = typer.Typer()
    app.command()(serve)
    app.command("noop")(lambda: None)  # two commands, so `serve` is addressed by name
    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--model", "fake:constant", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "127.0.0.1" in result.output
    with ModelServer("fake:constant") as srv:
        busy = int(srv.base_url.rsplit(":", 1)[1].split("/")[0])
        result = runner.invoke(
            app, ["serve", "--model", "fake:constant", "--embedder", "", "--port", str(busy)]
        )
        assert result.exit_code == 2
        assert "--port" in result.output


def test_cache_hits_report_the_original_usage(tmp_path: Path) -> None:
    with ModelServer("fake:constant", cache_dir=tmp_path / "cache") as srv:
        first = httpx.post(srv.base_url + "/chat/completions", json=chat_body()).json()
        again = httpx.post(srv.base_url + "/chat/completions", json=chat_body()).json()
        stats = srv.stats()
    assert again["usage"] == first["usage"]
    assert (stats.chat.calls, stats.chat.cached_calls) == (1, 1)
    assert stats.chat.prompt_tokens == 2 * first["usage"]["prompt_tokens"]


def test_block_until_interrupted_serves_then_closes_on_ctrl_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from judgealign import http_base

    server = ModelServer(FakeLLM("constant"))
    seen: list[int] = []

    def interrupt(_: float) -> None:
        # The server answers while the caller blocks; then Ctrl-C arrives.
        seen.append(httpx.get(server.base_url + "/models").status_code)
        raise KeyboardInterrupt

    monkeypatch.setattr(http_base.time, "sleep", interrupt)
    server.serve_forever()
    assert seen == [200]
    with pytest.raises(httpx.ConnectError):  # closed after the interrupt
        httpx.get(server.base_url + "/models")


def test_foreign_pages_cannot_drive_the_server() -> None:
    # Any web page the user visits could POST to 127.0.0.1 (a 'simple' text/plain request)
    # or rebind its own host name to it, spending the user's API credits.
    with ModelServer(FakeLLM("constant")) as srv:
        url = srv.base_url + "/chat/completions"
        body = json.dumps(chat_body()).encode()
        plain = httpx.post(url, content=body, headers={"Content-Type": "text/plain"})
        assert plain.status_code == 415
        cross = httpx.post(url, json=chat_body(), headers={"Origin": "https://evil.example"})
        assert cross.status_code == 403
        rebound = httpx.post(url, json=chat_body(), headers={"Host": "evil.example:80"})
        assert rebound.status_code == 403
        assert (
            httpx.get(srv.base_url + "/models", headers={"Host": "evil.example"}).status_code == 403
        )
        host, port = srv.base_url.split("//", 1)[1].split("/", 1)[0].split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{}"
            )
            assert sock.recv(200).startswith(b"HTTP/1.1 413")
        ok = httpx.post(url, json=chat_body(), headers={"Origin": f"http://127.0.0.1:{port}"})
        assert ok.status_code == 200


def test_a_token_guards_the_server_and_is_required_beyond_loopback() -> None:
    with pytest.raises(ConfigError, match="needs a token"):
        ModelServer(FakeLLM("constant"), host="0.0.0.0")
    with ModelServer(FakeLLM("constant"), token="s3cret") as srv:
        url = srv.base_url + "/chat/completions"
        assert httpx.post(url, json=chat_body()).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.post(url, json=chat_body(), headers=wrong).status_code == 401
        right = {"Authorization": "Bearer s3cret"}
        assert httpx.post(url, json=chat_body(), headers=right).status_code == 200
