"""The browser labelling tool: session save logic, HTTP API and page, and the CLI command."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import nbformat
import pytest
from typer.testing import CliRunner

from judgealign.cli import label_cmd
from judgealign.cli.main import app
from judgealign.data.items_io import load_items
from judgealign.data.labels_io import read_labels
from judgealign.errors import ConfigError, DataError
from judgealign.labelling import (
    LabellingServer,
    LabellingSession,
    read_judge_file,
    read_judgements,
)
from judgealign.rubric import load_rubric

runner = CliRunner()
RUBRIC = load_rubric("ml-notebook")
DIM = "data_imputation"


def write_notebooks(folder: Path) -> list[Path]:
    """Two notebooks in a subfolder, so item ids contain a slash (sub/nb0.ipynb)."""
    sub = folder / "nbs" / "sub"
    sub.mkdir(parents=True)
    paths = []
    for i in range(2):
        nb = nbformat.v4.new_notebook()
        nb.cells = [
            nbformat.v4.new_markdown_cell(f"# Notebook {i} <script>alert(1)</script>"),
            nbformat.v4.new_code_cell("df = df.fillna(df.mean())"),
        ]
        path = sub / f"nb{i}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    (folder / "nbs" / "top.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook()))
    return paths


def rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_notebooks(tmp_path)
    return tmp_path


@pytest.fixture
def existing(folder: Path) -> Path:
    """A labels file with another rater's label and another dimension of ours."""
    path = folder / "labels.jsonl"
    path.write_text(
        json.dumps({"rater": "bob", "item": "sub/nb0.ipynb", "dimension": DIM, "score": 1, "x": 1})
        + "\n"
        + json.dumps(
            {"item": "sub/nb0.ipynb", "dimension": "model_use", "score": 3, "rater": "ann"}
        )
        + "\n"
        + json.dumps({"item": "elsewhere.ipynb", "dimension": DIM, "score": 2, "rater": "ann"})
        + "\n"
    )
    return path


def session(folder: Path, labels: Path, **kw: object) -> LabellingSession:
    items = load_items([folder / "nbs"])
    return LabellingSession(items, RUBRIC.subset([DIM]), labels, file_rubric=RUBRIC, **kw).load()  # type: ignore[arg-type]


# -- session ---------------------------------------------------------------------------------
def test_save_then_reload(folder: Path) -> None:
    labels = folder / "out" / "labels.jsonl"
    s = session(folder, labels, rater="ann")
    saved = s.save("sub/nb1.ipynb", DIM, 2, "fills with the full-data mean")
    assert saved.id == "sub/nb1.ipynb::data_imputation::ann"
    again = session(folder, labels, rater="ann")
    assert [(lb.item, lb.score, lb.rationale) for lb in again.labels] == [
        ("sub/nb1.ipynb", 2.0, "fills with the full-data mean")
    ]
    assert s.saved_count == 1
    assert not list(labels.parent.glob(".labels.jsonl.*"))  # no temporary file left behind


def test_save_keeps_others_and_replaces_in_place(folder: Path, existing: Path) -> None:
    before = existing.read_text()
    s = session(folder, existing, rater="ann")
    s.save("sub/nb0.ipynb", DIM, 3, "first")
    s.save("sub/nb0.ipynb", DIM, 1, "changed my mind")
    after = rows(existing)
    # Other raters, dimensions and items keep their lines byte for byte, in order.
    assert existing.read_text().startswith(before)
    assert after[3] == {
        "item": "sub/nb0.ipynb",
        "dimension": DIM,
        "score": 1,
        "rationale": "changed my mind",
        "rater": "ann",
    }
    assert len(after) == 4
    read_labels(existing, RUBRIC)  # still a valid labels file (no duplicate)


def test_save_keeps_labels_written_meanwhile(folder: Path, existing: Path) -> None:
    s = session(folder, existing, rater="ann")
    with existing.open("a") as fh:
        fh.write(json.dumps({"item": "x", "dimension": DIM, "score": 2, "rater": "cy"}) + "\n")
    s.save("sub/nb1.ipynb", DIM, 2)
    assert {r["rater"] for r in rows(existing)} == {"bob", "ann", "cy"}


def test_label_naming_item_by_stem_is_replaced_in_place(folder: Path) -> None:
    labels = folder / "labels.jsonl"
    lines = [
        {"item": "nb1", "dimension": DIM, "score": 1, "rater": "expert"},
        {"item": "nb1", "dimension": DIM, "score": 3, "rater": "ann"},
    ]
    labels.write_text("".join(json.dumps(r) + "\n" for r in lines))
    s = session(folder, labels)
    assert [lb.item for lb in s.labels] == ["sub/nb1.ipynb"]
    s.save("sub/nb1.ipynb", DIM, 2)
    assert [(r["item"], r["score"], r["rater"]) for r in rows(labels)] == [
        ("sub/nb1.ipynb", 2, "expert"),
        ("nb1", 3, "ann"),
    ]


@pytest.mark.parametrize(
    ("item", "dimension", "score", "error", "words"),
    [
        ("sub/nb0.ipynb", DIM, 7, DataError, "off the scale 1-3 or 0 (N/A)"),
        ("sub/nb0.ipynb", DIM, "high", DataError, "not a number"),
        ("sub/nb0.ipynb", "model_use", 2, ConfigError, "unknown dimension 'model_use'"),
        ("sub/nb0.ipynb", "nope", 2, ConfigError, "known: data_imputation"),
        ("missing.ipynb", DIM, 2, DataError, "unknown item 'missing.ipynb'; use an item id"),
    ],
)
def test_invalid_save_leaves_file_unchanged(
    folder: Path,
    existing: Path,
    item: str,
    dimension: str,
    score: object,
    error: type[Exception],
    words: str,
) -> None:
    before = existing.read_bytes()
    s = session(folder, existing, rater="ann")
    with pytest.raises(error, match=re.escape(words)):
        s.save(item, dimension, score)
    assert existing.read_bytes() == before


def test_na_is_accepted(folder: Path) -> None:
    labels = folder / "labels.csv"
    s = session(folder, labels)
    assert s.save("sub/nb0.ipynb", DIM, 0, "no missing values").score == 0
    assert read_labels(labels, RUBRIC)[0].score == 0


def test_broken_file_refused_at_start(folder: Path) -> None:
    labels = folder / "labels.jsonl"
    labels.write_text('{"item": "a", "dimension": "data_imputation", "score": 9}\n')
    with pytest.raises(DataError, match="off the scale"):
        session(folder, labels)
    with pytest.raises(ConfigError, match="rater"):
        session(folder, folder / "new.jsonl", rater="a::b")


# -- judgements ------------------------------------------------------------------------------
def judgements_file(folder: Path) -> Path:
    path = folder / "scored.jsonl"
    lines = [
        {"item": "sub/nb0.ipynb", "dimension": DIM, "score": 2, "rationale": "mean fill"},
        {"item": "sub/nb1.ipynb", "dimension": DIM, "score": None, "error": "provider error"},
        {"item": "sub/nb1.ipynb", "dimension": DIM, "score": 1, "rationale": "leaks"},
        {"item": "top.ipynb", "dimension": DIM, "score": 0, "rationale": "nothing missing"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in lines) + '\n{"item": "torn')
    return path


def test_judgements_and_disagreement_order(folder: Path) -> None:
    judged = read_judgements(judgements_file(folder))
    assert len(judged) == 3  # the retry replaced the failure; the torn line is skipped
    s = session(folder, folder / "l.jsonl", judgements=judged)
    assert s.view("sub/nb1.ipynb").judgements[DIM].score == 1
    s.save("sub/nb0.ipynb", DIM, 2)  # agrees
    s.save("sub/nb1.ipynb", DIM, 1)  # agrees
    s.save("top.ipynb", DIM, 3)  # judge said N/A
    assert [r.id for r in s.ordered("file")] == ["sub/nb0.ipynb", "sub/nb1.ipynb", "top.ipynb"]
    first = s.ordered("disagreements")
    assert (first[0].id, first[0].disagreements) == ("top.ipynb", 1)
    s.save("sub/nb1.ipynb", DIM, 3)
    assert [r.id for r in s.ordered("disagreements")][:2] == ["sub/nb1.ipynb", "top.ipynb"]


def test_bad_judgements_file(folder: Path) -> None:
    path = folder / "scored.jsonl"
    path.write_text("not json\n{}\n")
    with pytest.raises(DataError, match=re.escape("scored.jsonl:1: not a judgement")):
        read_judgements(path)


# -- server ----------------------------------------------------------------------------------
@pytest.fixture
def server(folder: Path, existing: Path) -> Iterator[LabellingServer]:
    judged = read_judgements(judgements_file(folder))
    with LabellingServer(session(folder, existing, rater="ann", judgements=judged)) as srv:
        yield srv


def test_page_is_self_contained(server: LabellingServer) -> None:
    resp = httpx.get(server.url)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "script-src 'sha256-" in resp.headers["content-security-policy"]
    html = resp.text
    assert html.startswith("<!doctype html>") and "Content-Security-Policy" in html
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert "innerHTML" not in html  # item text reaches the DOM as text only


def test_api_state_and_item(server: LabellingServer) -> None:
    state = httpx.get(server.url + "api/state").json()
    assert state["rater"] == "ann" and state["has_judgements"] is True
    assert [d["id"] for d in state["dimensions"]] == [DIM]
    assert state["dimensions"][0]["scale"]["na_value"] == 0
    assert [it["id"] for it in state["items"]][:2] == ["sub/nb0.ipynb", "sub/nb1.ipynb"]
    view = httpx.get(server.url + "api/items/" + quote("sub/nb1.ipynb", safe="")).json()
    assert view["id"] == "sub/nb1.ipynb" and "[cell 2 | code]" in view["text"]
    assert "<script>alert(1)</script>" in view["text"]  # raw in JSON; the page uses textContent
    assert view["judgements"][DIM]["score"] == 1 and view["labels"] == {}
    missing = httpx.get(server.url + "api/items/" + quote("no/such", safe=""))
    assert missing.status_code == 400 and "unknown item 'no/such'" in missing.json()["error"]


def test_api_save_and_errors(server: LabellingServer, existing: Path) -> None:
    url = server.url + "api/labels"
    ok = httpx.post(url, json={"item": "sub/nb1.ipynb", "dimension": DIM, "score": 3})
    assert ok.status_code == 200 and ok.json()["rater"] == "ann"
    assert rows(existing)[-1]["item"] == "sub/nb1.ipynb" and rows(existing)[-1]["score"] == 3
    view = httpx.get(server.url + "api/items/" + quote("sub/nb1.ipynb", safe="")).json()
    assert view["labels"][DIM]["score"] == 3
    state = httpx.get(server.url + "api/state", params={"order": "disagreements"}).json()
    assert state["items"][0] == {
        "id": "sub/nb1.ipynb",
        "title": "sub/nb1.ipynb",
        "labelled": 1,
        "total": 1,
        "disagreements": 1,
        "uncertainty": None,
    }
    before = existing.read_bytes()
    for body, words in [
        ({"item": "sub/nb1.ipynb", "dimension": DIM, "score": 5}, "off the scale"),
        ({"item": "sub/nb1.ipynb", "dimension": "zzz", "score": 1}, "unknown dimension"),
        ({"item": "nope", "dimension": DIM, "score": 1}, "unknown item"),
        ({"item": "sub/nb1.ipynb", "dimension": DIM}, "give 'score'"),
    ]:
        bad = httpx.post(url, json=body)
        assert bad.status_code == 400 and words in bad.json()["error"]
    plain = httpx.post(url, content=b"{}", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 400 and "application/json" in plain.json()["error"]
    foreign = httpx.get(server.url + "api/state", headers={"Host": "evil.example:80"})
    assert foreign.status_code == 403
    assert existing.read_bytes() == before


# -- CLI -------------------------------------------------------------------------------------
def test_cli_errors_are_one_line(folder: Path) -> None:
    nbs = str(folder / "nbs")
    result = runner.invoke(app, ["label", nbs, "--rubric", "nope", "--labels", "l.jsonl"])
    assert result.exit_code == 2 and "unknown rubric 'nope'" in result.output
    broken = folder / "broken.jsonl"
    broken.write_text("{oops\n")
    before = broken.read_bytes()
    result = runner.invoke(
        app, ["label", nbs, "--rubric", "ml-notebook", "--labels", str(broken), "--no-open"]
    )
    assert result.exit_code == 2 and "broken.jsonl:1: not valid JSON" in result.output
    assert "Traceback" not in result.output and broken.read_bytes() == before


def test_cli_serves_until_stopped(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = folder / "labels.jsonl"

    def one_save(server: LabellingServer) -> None:
        body = {"item": "top.ipynb", "dimension": "model_use", "score": 2, "rationale": "ok"}
        assert httpx.post(server.url + "api/labels", json=body).status_code == 200

    monkeypatch.setattr(label_cmd, "serve_until_interrupted", one_save)
    args = ["label", str(folder / "nbs"), "--rubric", "ml-notebook", "--labels", str(labels)]
    result = runner.invoke(app, [*args, "--rater", "ann", "--dimension", "model_use", "--no-open"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:" in result.output and "saved 1 label(s)" in result.output
    assert rows(labels) == [
        {
            "item": "top.ipynb",
            "dimension": "model_use",
            "score": 2,
            "rationale": "ok",
            "rater": "ann",
        }
    ]


# -- strict input checks ---------------------------------------------------------------------
def raw_request(server: LabellingServer, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes to the server and read until it closes (or the timeout fires)."""
    import socket

    host, port = server.url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_scores_must_be_levels_and_bodies_bounded(server: LabellingServer, existing: Path) -> None:
    url = server.url + "api/labels"
    before = existing.read_bytes()
    for body, words in [
        ({"item": "sub/nb1.ipynb", "dimension": DIM, "score": 2.5}, "not a level"),
        ({"item": "sub/nb1.ipynb", "dimension": DIM, "score": True}, "not a number"),
        ({"item": "sub/nb1.ipynb", "dimension": DIM, "score": "2"}, "not a number"),
        ({"item": "sub/nb1.ipynb", "dimension": DIM, "score": -1}, "off the scale"),
        (
            {"item": "sub/nb1.ipynb", "dimension": DIM, "score": 2, "rationale": "x" * 20_001},
            "keep it within 20,000",
        ),
        ({"item": "sub/nb1.ipynb", "dimension": DIM, "score": 2, "rater": "eve"}, "unknown"),
        ({"item": "sub/nb1.ipynb", "dimension": DIM, "score": 2, "rationale": 5}, "string"),
        ([1, 2], "JSON object"),
    ]:
        bad = httpx.post(url, json=body)
        assert bad.status_code == 400 and words in bad.json()["error"], (body, bad.text)
    huge = httpx.post(
        url,
        content=b"{" + b" " * (20 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413 and "exceeds" in huge.json()["error"]
    for content in (b"{not json", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000):
        bad = httpx.post(url, content=content, headers={"Content-Type": "application/json"})
        assert bad.status_code in (400, 413), content[:10]
    assert httpx.get(server.url + "api/state", params={"order": "nope"}).status_code == 400
    assert httpx.get(server.url + "api/nothing").status_code == 404
    assert httpx.get(server.url + "api/agreement/nope").status_code == 400
    assert existing.read_bytes() == before


def test_malformed_http_never_hangs(server: LabellingServer) -> None:
    started = time.monotonic()
    negative = raw_request(
        server,
        b"POST /api/labels HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: -5\r\n\r\n{}",
    )
    assert negative.startswith(b"HTTP/1.1 400") and b"not JSON" in negative
    chunked = raw_request(
        server,
        b"POST /api/labels HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
    )
    assert chunked.startswith(b"HTTP/1.1 400") and b"Content-Length" in chunked
    garbage = raw_request(server, b"\x16\x03\x01 not http at all\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.") and b" 400 " in garbage.split(b"\r\n")[0]
    # Each answer came at once and the connection was closed, not left waiting for bytes.
    assert time.monotonic() - started < 4
    assert httpx.get(server.url + "api/state").status_code == 200  # the server lives on


def test_notebook_view_has_safe_html(server: LabellingServer) -> None:
    view = httpx.get(server.url + "api/items/" + quote("sub/nb0.ipynb", safe="")).json()
    assert view["kind"] == "notebook" and '<article class="ja-nb">' in view["html"]
    assert "<h1>Notebook 0 </h1>" in view["html"] and "<script" not in view["html"]
    assert '<span class="n">df</span>' in view["html"]  # highlighted code


# -- several raters, tokens --------------------------------------------------------------------
ANN, BOB = "a" * 20 + "-ann-token", "b" * 20 + "-bob-token"


@pytest.fixture
def shared(folder: Path) -> Iterator[LabellingServer]:
    s = session(folder, folder / "team.jsonl", rater="ann", raters=["ann", "bob"])
    with LabellingServer(s, tokens={ANN: "ann", BOB: "bob"}) as srv:
        yield srv


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_name_the_rater(shared: LabellingServer, folder: Path) -> None:
    url = shared.url + "api/labels"
    body = {"item": "sub/nb0.ipynb", "dimension": DIM, "score": 1, "rationale": "mean fill"}
    assert httpx.post(url, json=body).status_code == 401
    assert httpx.post(url, json=body, headers=auth("wrong" * 5)).status_code == 401
    assert httpx.get(shared.url + "api/state").status_code == 401
    assert httpx.post(url, json=body, headers=auth(ANN)).json()["rater"] == "ann"
    body["score"] = 3
    assert httpx.post(url, json=body, headers=auth(BOB)).json()["rater"] == "bob"
    assert httpx.get(shared.url, headers={}).status_code == 200  # the page itself is static
    state = httpx.get(shared.url + "api/state", headers=auth(BOB)).json()
    assert state["rater"] == "bob" and state["raters"] == ["ann", "bob"]
    # Each rater sees only their own label while labelling.
    mine = httpx.get(shared.url + "api/items/sub%2Fnb0.ipynb", headers=auth(ANN)).json()
    assert mine["labels"][DIM]["score"] == 1
    assert {(r["rater"], r["score"]) for r in rows(folder / "team.jsonl")} == {
        ("ann", 1),
        ("bob", 3),
    }
    foreign = httpx.get(
        shared.url + "api/state", headers={**auth(ANN), "Origin": "http://evil.example"}
    )
    assert foreign.status_code == 403
    assert shared.url_for("bob").endswith("#token=" + BOB)


def test_agreement_and_adjudication_api(shared: LabellingServer, folder: Path) -> None:
    url = shared.url + "api/labels"
    for token, item, score, why in [
        (ANN, "sub/nb0.ipynb", 1, "fills with the full-data mean: leaks"),
        (BOB, "sub/nb0.ipynb", 3, "imputes, fine"),
        (ANN, "sub/nb1.ipynb", 2, "ok"),
        (BOB, "sub/nb1.ipynb", 2, "ok too"),
        (ANN, "top.ipynb", 0, "no missing values"),
        (BOB, "top.ipynb", 2, "drops rows"),
    ]:
        body = {"item": item, "dimension": DIM, "score": score, "rationale": why}
        assert httpx.post(url, json=body, headers=auth(token)).status_code == 200
    a = httpx.get(shared.url + f"api/agreement/{DIM}", headers=auth(ANN)).json()
    assert a["raters"] == ["ann", "bob"] and a["n_labelled_twice"] == 3
    assert a["n_items"] == 2 and a["mae"] == 1.0 and a["pairwise_mae"] == 1.0
    assert a["alpha_interval"] is not None and a["na_agreement"] == pytest.approx(0.6667)
    cases = {d["item"]: d for d in a["disagreements"]}
    assert set(cases) == {"sub/nb0.ipynb", "top.ipynb"}  # nb1 agrees
    assert [(s["rater"], s["score"], s["rationale"]) for s in cases["sub/nb0.ipynb"]["scores"]] == [
        ("ann", 1.0, "fills with the full-data mean: leaks"),
        ("bob", 3.0, "imputes, fine"),
    ]
    adj = {"item": "sub/nb0.ipynb", "dimension": DIM, "score": 1, "rationale": "leak wins"}
    done = httpx.post(shared.url + "api/adjudications", json=adj, headers=auth(BOB)).json()
    assert done["adjudicator"] == "bob" and done["score"] == 1
    adj["score"] = 1.5
    assert (
        httpx.post(shared.url + "api/adjudications", json=adj, headers=auth(BOB)).status_code == 400
    )
    a = httpx.get(shared.url + f"api/agreement/{DIM}", headers=auth(ANN)).json()
    assert (
        a["adjudicated"] == 1 and a["disagreements"][-1]["adjudication"]["rationale"] == "leak wins"
    )
    consensus = rows(folder / "team.adjudicated.jsonl")
    assert {
        "item": "sub/nb0.ipynb",
        "dimension": DIM,
        "score": 1,
        "rationale": "leak wins",
        "rater": "adjudicated",
    } in consensus
    history = httpx.get(shared.url + "api/history", headers=auth(ANN)).json()["changes"]
    assert [c["kind"] for c in history] == ["save"] * 6 + ["adjudicate"]
    assert all(c["at"] and c["actor"] in ("ann", "bob") for c in history)


def test_beyond_loopback_needs_tokens(folder: Path) -> None:
    s = session(folder, folder / "l.jsonl")
    with pytest.raises(ConfigError, match="give each rater a token"):
        LabellingServer(s, host="0.0.0.0").start()
    with pytest.raises(ConfigError, match="too short"):
        LabellingServer(s, tokens={"short": "expert"}).start()


# -- the queue ---------------------------------------------------------------------------------
def test_uncertain_order_from_two_judges_and_probabilities(folder: Path) -> None:
    run = folder / "run" / "judgements.jsonl"
    run.parent.mkdir()
    lines = []
    for variant, scores in (("baseline", (1, 2, 3)), ("full", (1, 3, 3))):
        for item, score in zip(
            ("sub/nb0.ipynb", "sub/nb1.ipynb", "top.ipynb"), scores, strict=True
        ):
            j = {"item": item, "dimension": DIM, "score": score, "rationale": variant}
            if variant == "full" and item == "top.ipynb":
                j["score_probs"] = {"1": 0.45, "3": 0.55}  # sure of nothing
            lines.append(json.dumps({"variant": variant, "fold": 0, "judgement": j}))
    run.write_text("\n".join(lines) + "\n")
    sources = read_judge_file(run.parent)
    assert [s.name for s in sources] == ["baseline", "full"]
    s = session(folder, folder / "l.jsonl", judge_sources=sources)
    order = s.ordered("uncertain")
    assert [(r.id, r.uncertainty) for r in order] == [
        ("top.ipynb", pytest.approx(0.995, abs=0.01)),  # split between the ends
        ("sub/nb1.ipynb", 0.5),  # the two judges a level apart
        ("sub/nb0.ipynb", 0.0),  # both say 1
    ]
    view = s.view("top.ipynb")
    assert view.judgements[DIM].name == "full"  # the last judge is the one shown
    assert [j.name for j in view.judges[DIM]] == ["baseline", "full"]
    s.save("top.ipynb", DIM, 3)  # labelled items go to the end of the queue
    assert [r.id for r in s.ordered("uncertain")][-1] == "top.ipynb"


# -- more ways in ------------------------------------------------------------------------------
def test_cli_labels_a_ratings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ratings = tmp_path / "ratings.jsonl"
    records = [
        {
            "dataset": "toy",
            "item_id": f"q{i}::sys",
            "group_id": f"q{i}",
            "input": {"question": f"What is {i}?"},
            "output": f"It is {i}.",
            "scores": {"correctness": 3},
            "scale": {"correctness": [1, 5]},
        }
        for i in range(3)
    ]
    ratings.write_text("".join(json.dumps(r) + "\n" for r in records))
    labels = tmp_path / "labels.jsonl"
    seen: dict[str, object] = {}

    def look(server: LabellingServer) -> None:
        seen["state"] = httpx.get(server.url + "api/state").json()
        seen["view"] = httpx.get(server.url + "api/items/" + quote("q1::sys", safe="")).json()
        body = {"item": "q1::sys", "dimension": "correctness", "score": 4, "rationale": "ok"}
        assert httpx.post(server.url + "api/labels", json=body).status_code == 200

    monkeypatch.setattr(label_cmd, "serve_until_interrupted", look)
    args = ["label", "--ratings", str(ratings), "--labels", str(labels), "--no-open"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    state, view = seen["state"], seen["view"]
    assert [it["id"] for it in state["items"]] == ["q0::sys", "q1::sys", "q2::sys"]  # type: ignore[index]
    assert view["kind"] == "text" and "What is 1?" in view["text"] and view["html"] is None  # type: ignore[index]
    assert rows(labels) == [
        {
            "item": "q1::sys",
            "dimension": "correctness",
            "score": 4,
            "rationale": "ok",
            "rater": "expert",
        }
    ]
    both = runner.invoke(app, [*args, str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.output


def test_cli_jsonl_text_items_and_rater_links(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text(
        json.dumps({"id": "s1", "output": "A summary.", "inputs": {"article": "Long text."}}) + "\n"
    )
    tokens = tmp_path / "tokens.json"
    seen: dict[str, object] = {}

    def look(server: LabellingServer) -> None:
        seen["tokens"] = dict(server.tokens)

    monkeypatch.setattr(label_cmd, "serve_until_interrupted", look)
    args = [
        "label", str(texts), "--rubric", "summeval", "--labels", str(tmp_path / "l.jsonl"),
        "--rater", "ann", "--rater", "bob", "--tokens", str(tokens), "--no-open",
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stored = json.loads(tokens.read_text())
    assert set(stored) == {"ann", "bob"} and oct(tokens.stat().st_mode & 0o777) == "0o600"
    assert "ann: http://127.0.0.1:" in result.output and f"#token={stored['ann']}" in result.output
    assert seen["tokens"] == {stored["ann"]: "ann", stored["bob"]: "bob"}
    again = runner.invoke(app, args)  # the same links after a restart
    assert again.exit_code == 0 and json.loads(tokens.read_text()) == stored
