"""The browser labelling tool: session save logic, HTTP API and page, and the CLI command."""

from __future__ import annotations

import json
import re
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
from judgealign.labelling import LabellingServer, LabellingSession, read_judgements
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
