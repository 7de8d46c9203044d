"""The labelling page in a real browser: headless Chromium driven by Playwright.

A real notebook from ../shared (markdown, a plot, an HTML table) is rendered and labelled
with the mouse and the keyboard; the stored rows are checked; a hostile notebook runs
nothing and loads nothing; two raters disagree and one adjudicates. Screenshots go to the
test's temporary folder (``bench/labelling.py`` writes the ones kept under bench/results/).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from judgealign.data.item import Item
from judgealign.data.items_io import load_items
from judgealign.data.labels_io import read_labels
from judgealign.labelling import LabellingServer, LabellingSession
from judgealign.rubric import load_rubric

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "notebooks"
REAL = (
    SHARED
    / "PacktPublishing+Python-Feature-Engineering-Cookbook/Chapter01"
    / "Recipe-2-Quantifying-missing-data.ipynb"
)
RUBRIC = load_rubric("ml-notebook")
DIMS = ["data_imputation", "model_use"]
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="pip install playwright (the dev extra has it)"
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no headless chromium: apt-get install chromium (make system-deps)"
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Debian's Chromium, never `playwright install` (it downloads a browser; offline it fails).
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def hostile_notebook(folder: Path) -> Path:
    book = nbformat.v4.new_notebook()
    long_log = "".join(f"epoch {i}: loss {1 / (i + 1):.4f}\n" for i in range(300))
    cell = nbformat.v4.new_code_cell("train()", execution_count=1)
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=long_log),
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": '<img src="x" onerror="window.pwned=1"><script>window.pwned=2'
                "</script><b>table</b>",
                "text/plain": "x",
            },
        ),
        nbformat.v4.new_output(
            "display_data",
            data={"image/svg+xml": '<svg xmlns="http://www.w3.org/2000/svg" onload="'
                  'window.pwned=3"><rect width="10" height="10"/></svg>'},
        ),
    ]  # fmt: skip
    book.cells = [
        nbformat.v4.new_markdown_cell(
            '# Hostile <img src="http://127.0.0.2:9/track.png"> '
            "[x](javascript:window.pwned=4)<script>window.pwned=5</script>"
        ),
        cell,
    ]
    path = folder / "hostile.ipynb"
    nbformat.write(book, path)
    return path


def serve(
    items: list[Item], labels: Path, tokens: dict[str, str] | None = None, **kw: Any
) -> LabellingServer:
    s = LabellingSession(items, RUBRIC.subset(DIMS), labels, file_rubric=RUBRIC, **kw).load()
    return LabellingServer(s, tokens=tokens).start()


def watch(page: Any, origin: str) -> dict[str, list[str]]:
    """Record console errors, CSP violations and every request that leaves the origin."""
    seen: dict[str, list[str]] = {"errors": [], "outside": []}
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))

    def request(req: Any) -> None:
        if not (req.url.startswith(origin) or req.url.startswith("data:")):
            seen["outside"].append(req.url)

    page.on("request", request)
    return seen


@pytest.mark.skipif(not REAL.is_file(), reason="../shared/data/notebooks is absent")
def test_real_notebook_labelled_with_mouse_and_keyboard(browser: Any, tmp_path: Path) -> None:
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    shutil.copy(REAL, notebooks / REAL.name)
    hostile_notebook(notebooks)
    labels = tmp_path / "labels.jsonl"
    server = serve(load_items([notebooks]), labels, rater="ann")
    try:
        page = browser.new_page(viewport={"width": 1024, "height": 768})
        seen = watch(page, server.url.rstrip("/"))
        page.goto(server.url + "#item=" + REAL.name)
        page.wait_for_selector(".ja-nb .cell")
        # The notebook as the expert sees it: markdown, highlighted code, the plot decoded.
        assert page.locator(".ja-nb .md a").count() >= 1
        assert page.locator(".ja-nb .hl .kn").count() >= 1  # "import" highlighted
        assert page.locator(".ja-nb .out.html table").count() >= 1  # data.head() as a table
        plot = page.locator('.ja-nb img[src^="data:image/png;base64,"]').first
        plot.scroll_into_view_if_needed()
        assert plot.evaluate("img => img.complete && img.naturalWidth > 100")
        # Readable at 1024 px: the item list folds into a drawer, the notebook keeps its room.
        pane = page.locator("#textpane").bounding_box()
        assert pane is not None and pane["width"] >= 600
        assert not page.locator("nav#list").is_visible()
        page.screenshot(path=str(tmp_path / "label-1024.png"))

        # Mouse: pick 2 on data imputation, justify, Save.
        card = page.locator('.dim[data-dim="data_imputation"]')
        card.locator('.level[data-value="2"]').click()
        card.locator("textarea").fill("counts missing values per column; no imputation yet")
        card.locator("button.save").click()
        page.wait_for_selector('.dim[data-dim="data_imputation"] .status:has-text("saved: 2")')
        # Keyboard: focus moved to the next unlabelled card; 0 is N/A, Enter opens the
        # justification, Ctrl+Enter saves.
        page.wait_for_selector('.dim[data-dim="model_use"].focused')
        page.keyboard.press("0")
        page.keyboard.press("Enter")
        page.keyboard.type("no model is fitted in this recipe")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector('.dim[data-dim="model_use"] .status:has-text("saved: N/A")')
        page.set_viewport_size({"width": 1440, "height": 900})
        page.wait_for_selector("nav#list", state="visible")
        page.screenshot(path=str(tmp_path / "label-1440.png"))

        stored = {lb.dimension: lb for lb in read_labels(labels, RUBRIC)}
        assert set(stored) == set(DIMS)
        assert (stored["data_imputation"].score, stored["data_imputation"].rater) == (2.0, "ann")
        assert stored["data_imputation"].rationale.startswith("counts missing values")
        assert (stored["model_use"].score, stored["model_use"].rationale) == (
            0.0,
            "no model is fitted in this recipe",
        )
        assert all(lb.item.endswith(REAL.name) for lb in stored.values())

        # The hostile notebook runs nothing, loads nothing, and its long log folds away.
        page.keyboard.press("n")
        page.wait_for_selector("#itemtitle:has-text('hostile.ipynb')")
        page.wait_for_selector(".ja-nb details.more")
        assert page.evaluate("() => window.pwned") is None
        log = page.locator(".ja-nb details.more").first
        assert not log.locator("pre").is_visible()
        log.locator("summary").click()
        assert log.locator("pre").is_visible() and "epoch 299" in log.inner_text()
        page.screenshot(path=str(tmp_path / "hostile.png"))
        assert seen["outside"] == []
        assert not [e for e in seen["errors"] if "Content Security Policy" not in e], seen
        page.close()
    finally:
        server.close()
        server.session.close()
    assert (tmp_path / "label-1024.png").stat().st_size > 10_000


def test_two_raters_disagree_and_one_adjudicates(browser: Any, tmp_path: Path) -> None:
    items = [
        Item(id="a", output="print('a')", kind="text"),
        Item(id="b", output="print('b')", kind="text"),
    ]
    ann, bob = "a" * 24, "b" * 24
    labels = tmp_path / "team.jsonl"
    server = serve(
        items, labels, rater="ann", raters=["ann", "bob"], tokens={ann: "ann", bob: "bob"}
    )
    try:
        for token, score, why in ((bob, 3, "imputes with care"), (ann, 1, "leaks the test set")):
            body = {"item": "a", "dimension": "data_imputation", "score": score, "rationale": why}
            resp = httpx.post(
                server.url + "api/labels",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status_code == 200
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(server.url_for("ann"))
        page.wait_for_selector("#itemtext")
        assert "#token=" not in page.url  # the token leaves the address bar
        assert "rater ann" in page.inner_text("#who")
        page.click("#tabagree")
        case = page.locator('.case[data-item="a"]')
        case.wait_for()
        text = case.inner_text()
        assert "leaks the test set" in text and "imputes with care" in text
        assert "1" in page.locator("#agreement .figs").inner_text()
        case.locator('.level[data-value="1"]').click()
        case.locator("textarea").fill("the scaler is fitted before the split")
        case.locator("button.adjudicate").click()
        page.wait_for_selector('.case[data-item="a"] .settled')
        page.screenshot(path=str(tmp_path / "agreement.png"))
        page.close()
    finally:
        server.close()
        server.session.close()
    adjudicated = [
        json.loads(x) for x in (tmp_path / "team.adjudicated.jsonl").read_text().split("\n") if x
    ]
    assert {
        "item": "a",
        "dimension": "data_imputation",
        "score": 1,
        "rationale": "the scaler is fitted before the split",
        "rater": "adjudicated",
    } in adjudicated
