"""Notebooks as HTML for people: rendered, highlighted, with plots; safe against hostile ones."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest

from judgealign.errors import DataError
from judgealign.render.notebook_html import (
    FOLD_LINES,
    notebook_css,
    notebook_document,
    notebook_to_html,
    sanitize_html,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "notebooks"
# A 1x1 PNG.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)


def nb(*cells: Any, metadata: dict[str, Any] | None = None) -> str:
    book = nbformat.v4.new_notebook(metadata=metadata or {})
    book.cells = list(cells)
    return nbformat.writes(book)


def code(source: str, *outputs: Any, count: int | None = 1) -> Any:
    cell = nbformat.v4.new_code_cell(source, execution_count=count)
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    return cell


def display(data: dict[str, Any]) -> dict[str, Any]:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def test_markdown_code_and_images() -> None:
    html = notebook_to_html(
        nb(
            nbformat.v4.new_markdown_cell("## Impute\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n*mean*"),
            code(
                "df = df.fillna(df.mean())\nprint(df.shape)",
                stream("(100, 3)\n"),
                display({"image/png": PNG, "text/plain": "<Figure size 640x480>"}),
                count=7,
            ),
        )
    )
    assert "<h2>Impute</h2>" in html and "<table>" in html and "<em>mean</em>" in html
    assert '<span class="n">fillna</span>' in html  # Pygments classes
    assert f'<img src="data:image/png;base64,{PNG}" alt="&lt;Figure size 640x480&gt;">' in html
    assert "<pre>(100, 3)</pre>" in html
    assert 'id="cell-2"' in html and "[2] 7" in html  # cell number as the judge counts, In [7]
    assert ".ja-nb .hl .k" in notebook_css()


def test_hostile_notebook_stays_inert() -> None:
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
    )
    hostile = nb(
        nbformat.v4.new_markdown_cell(
            "<script>alert('md')</script>[click](javascript:alert(1)) "
            '<a href="javascript:alert(2)">x</a> <img src="http://evil.example/p.png" '
            'onerror="alert(3)"> <iframe src="http://evil.example"></iframe>'
            '<form action="http://evil.example"><input name=a></form>'
            '<a href="data:text/html;base64,PHNjcmlwdD4=">d</a>'
            "<style>body{background:url(http://evil.example/x)}</style>"
            '<div style="background:url(http://evil.example/y)">styled</div>'
            '<svg><a xlink:href="javascript:alert(4)"><text>t</text></a></svg>'
        ),
        code(
            "x",
            display(
                {
                    "text/html": '<b onclick="alert(5)">bold</b><script src="http://e/x.js">'
                    "</script><object data='http://e'></object><link rel=stylesheet href=http://e>"
                }
            ),
            display({"image/svg+xml": svg}),
            display({"image/png": "not base64!!"}),
            display({"application/javascript": "alert(6)", "text/plain": "<IPython.Javascript>"}),
        ),
    )
    html = notebook_to_html(hostile)
    lowered = html.lower()
    for bad in ("<script", "=\"javascript:", "onerror", "onclick", "onload=", "<iframe", "<form",
                "<input", "<object", "<link", "<style", "style=", "http://evil", "http://e/",
                "data:text/html", "<svg"):  # fmt: skip
        assert bad not in lowered, bad
    assert not re.search(r"=\s*['\"]?\s*javascript:", lowered)  # as text it is inert
    assert "<b>bold</b>" in html and "styled" in html
    # SVG only as an <img> data URI: a browser runs no script and loads nothing from there.
    uri = re.search(r'<img src="data:image/svg\+xml;base64,([^"]+)"', html)
    assert uri is not None and b"<script>" in base64.b64decode(uri.group(1))
    assert "not valid base64" in html
    assert "&lt;IPython.Javascript&gt;" in html  # the plain-text fallback, escaped


def test_long_outputs_fold_and_huge_ones_are_cut_with_a_note() -> None:
    lines = "".join(f"epoch {i}: loss {1 / (i + 1):.4f}\n" for i in range(500))
    html = notebook_to_html(nb(code("train()", stream(lines))))
    assert html.count("epoch ") == 500  # nothing cut: the rest folds away
    visible, folded = html.split("<details", 1)
    assert visible.count("epoch ") == FOLD_LINES and "show 460 more lines" in folded
    huge = "x" * 80 + "\n"
    text = huge * 60_000  # ~4.9 MB of output
    html = notebook_to_html(nb(code("spam()", stream(text))), max_output_chars=100_000)
    assert len(html) < 120_000
    assert re.search(r"\[\.\.\. [\d,]+ characters not shown: the output is too long \.\.\.\]", html)
    big_html = "<table>" + "<tr><td>1</td></tr>" * 200_000 + "</table>"
    html = notebook_to_html(
        nb(code("df", display({"text/html": big_html}))), max_output_chars=50_000
    )
    assert len(html) < 60_000


def test_ansi_carriage_returns_errors_and_attachments() -> None:
    error = {
        "output_type": "error",
        "ename": "ValueError",
        "evalue": "bad <input>",
        "traceback": ["\x1b[0;31mValueError\x1b[0m: bad <input>"],
    }
    md = nbformat.v4.new_markdown_cell("![plot](attachment:p.png)")
    md["attachments"] = {"p.png": {"image/png": PNG}}
    html = notebook_to_html(nb(md, code("fit()", stream("10%\r50%\r100%\n", "stderr"), error)))
    assert f'src="data:image/png;base64,{PNG}"' in html
    assert '<div class="out stderr"><pre>100%</pre>' in html
    assert "ValueError: bad &lt;input&gt;" in html and "\x1b" not in html


def test_old_formats_and_broken_files() -> None:
    v3 = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {},
        "worksheets": [{"cells": [{"cell_type": "code", "input": "1 + 1", "outputs": [],
                                   "language": "python"}]}],
    }  # fmt: skip
    assert "1</span>" in notebook_to_html(json.dumps(v3))
    with pytest.raises(DataError, match=r"bad\.ipynb: not valid JSON"):
        notebook_to_html("{oops", source="bad.ipynb")
    page = notebook_document(nb(code("x")), title="t")
    assert "script-src" not in page and "img-src data:" in page


def test_sanitize_keeps_tables_and_links() -> None:
    cleaned = sanitize_html('<table border="1" class="dataframe"><tr><th>a</th></tr></table>'
                            '<a href="https://example.org">ok</a>')  # fmt: skip
    assert "<th>a</th>" in cleaned
    assert 'href="https://example.org"' in cleaned and 'rel="noopener noreferrer"' in cleaned


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/notebooks is absent")
def test_every_shared_notebook_renders() -> None:
    paths = sorted(SHARED.rglob("*.ipynb"))
    assert len(paths) > 100
    with_images = 0
    for path in paths[::4]:  # a quarter of them keeps the test quick; all pass in bench
        html = notebook_to_html(path.read_text(encoding="utf-8"), source=str(path))
        assert html.startswith('<article class="ja-nb">') and "<script" not in html.lower()
        with_images += "data:image/png;base64," in html
    assert with_images > 5
