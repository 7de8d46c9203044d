"""A notebook as a person reads it: safe HTML with rendered markdown, highlighted code and plots.

The judge reads notebooks as budgeted text (``render.notebook``); experts, reports and agent
scoreboards show them as HTML. Everything here is built for hostile input: a notebook is data
written by someone else (or by an agent), so

- markdown (markdown-it-py) and HTML outputs pass through nh3's allowlist sanitizer: no
  scripts, event handlers, frames, forms, styles or ``javascript:`` URLs survive;
- images become ``data:`` URIs only after their base64 is checked; SVG is shown through
  ``<img>`` (never inline), where browsers run no script and fetch nothing;
- links open in a new tab with ``rel="noopener noreferrer"``; no other URL is kept, so the
  fragment loads nothing from anywhere and works offline under a CSP of
  ``default-src 'none'; img-src data:; style-src 'unsafe-inline'``;
- long outputs show their start and fold the rest into ``<details>`` rather than cutting it;
  only an output beyond ``max_output_chars`` loses its middle, with a note saying how much.

Cells are numbered by position, as the judge's text numbers them (``cell 7``), so a
justification can point at the cell the judge saw. Nothing is ever executed.

>>> nb = ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": ['
...       '{"cell_type": "markdown", "metadata": {}, "source": "# Churn <script>x()</script>"}]}')
>>> html = notebook_to_html(nb)
>>> "<h1>Churn </h1>" in html, "script" in html
(True, False)
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from functools import cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import PythonLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from judgealign.render.notebook import clean_terminal_text, notebook_text, parse_notebook

#: Past this many characters an output keeps its start and end and says how much it left out.
DEFAULT_MAX_OUTPUT_CHARS = 200_000
#: Outputs longer than this (lines or characters) show their start; the rest folds away.
FOLD_LINES = 40
FOLD_CHARS = 4_000
#: Larger images are named, not embedded (a 4 MB notebook's plots are far below this).
MAX_IMAGE_BYTES = 8 * 1024 * 1024

_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DATA_IMAGE = re.compile(
    r"data:image/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/]+={0,2}", re.ASCII
)
_ATTACHMENT = re.compile(r"attachment:([^\s)\"'>]+)")

# What markdown and HTML outputs may keep: document structure, tables, inline formatting.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del",
    "details", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp",
    "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "tt", "u", "ul", "var",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"title", "lang", "dir"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
    "col": {"span"},
    "colgroup": {"span"},
}
_LINK_SCHEMES = ("http://", "https://", "mailto:")

_CSS = """
.ja-nb{font:14px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2430;min-width:0}
.ja-nb .cell{display:grid;grid-template-columns:4.2em minmax(0,1fr);gap:0 8px;margin:0 0 10px}
.ja-nb .no{grid-column:1;font:11.5px/1.9 ui-monospace,Menlo,Consolas,monospace;color:#6b7480;
text-align:right;white-space:nowrap;overflow:hidden}
.ja-nb .body{grid-column:2;min-width:0}
.ja-nb .md{overflow-wrap:anywhere}.ja-nb .md>:first-child{margin-top:0}
.ja-nb .md>:last-child{margin-bottom:0}
.ja-nb .md h1{font-size:1.5em}.ja-nb .md h2{font-size:1.3em}.ja-nb .md h3{font-size:1.15em}
.ja-nb .md h1,.ja-nb .md h2,.ja-nb .md h3,.ja-nb .md h4{margin:.6em 0 .3em;line-height:1.25}
.ja-nb .md code{background:#eef0f3;padding:0 3px;border-radius:3px;font-size:.92em}
.ja-nb .md blockquote{margin:.4em 0;padding:0 10px;border-left:3px solid #c4cad3;color:#4a5361}
.ja-nb pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere;
font:12.5px/1.45 ui-monospace,Menlo,Consolas,monospace}
.ja-nb .src{background:#f6f8fa;border:1px solid #d6dae1;border-radius:4px;padding:6px 8px}
.ja-nb .out{margin-top:4px;padding:2px 8px;border-left:3px solid #e3e6ea}
.ja-nb .out.stderr{background:#fff5f0;border-left-color:#e0a080}
.ja-nb .out.error{background:#fdecea;border-left-color:#c0392b}
.ja-nb .out.error .ename{font-weight:bold;color:#a3281b}
.ja-nb .out.note{color:#6b7480;font-style:italic}
.ja-nb .out img{max-width:100%;height:auto;display:block;background:#fff}
.ja-nb details.more>summary{cursor:pointer;color:#2d5fa8;font-size:12.5px;margin:2px 0}
.ja-nb .elided{color:#8a4b0f;font-style:italic}
.ja-nb .html{overflow-x:auto;max-width:100%}
.ja-nb table{border-collapse:collapse;font-size:12.5px;margin:4px 0}
.ja-nb th,.ja-nb td{border:1px solid #d6dae1;padding:2px 6px;text-align:right;vertical-align:top}
.ja-nb thead th{background:#f0f2f5}.ja-nb tbody tr:nth-child(even){background:#fafbfc}
.ja-nb .md img{max-width:100%}
.ja-nb .raw{color:#4a5361}
"""


@cache
def _markdown() -> MarkdownIt:
    # commonmark + GFM tables and strikethrough (what Jupyter shows); raw HTML is parsed and
    # then sanitized, since notebooks often use <img> and <div> in markdown.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


@cache
def _formatter() -> HtmlFormatter[str]:
    return HtmlFormatter(nowrap=True, style="default")


def notebook_css() -> str:
    """The CSS the fragment needs (scoped under ``.ja-nb``), code colours included.

    >>> ".ja-nb .hl .k" in notebook_css()
    True
    """
    styles = str(_formatter().get_style_defs(".ja-nb .hl"))  # type: ignore[no-untyped-call]
    return _CSS + styles


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        # Only images carried inside the notebook; a remote one would be a tracking pixel.
        return value if _DATA_IMAGE.fullmatch(value.strip()) else None
    if tag == "a" and attribute == "href":
        target = value.strip()
        if target.startswith("#") or target.lower().startswith(_LINK_SCHEMES):
            return target
        return None
    return value


def sanitize_html(fragment: str) -> str:
    """Keep structure, tables and inline formatting; drop everything active or remote.

    >>> sanitize_html('<a href="javascript:alert(1)" onclick="x()">hi</a><style>b{}</style>')
    '<a target="_blank" rel="noopener noreferrer">hi</a>'
    """
    return nh3.clean(
        fragment,
        tags=_TAGS,
        clean_content_tags={"script", "style", "template", "textarea", "select", "noscript"},
        attributes=_ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "mailto", "data"},
        set_tag_attribute_values={"a": {"target": "_blank"}},
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def markdown_to_html(source: str, attachments: dict[str, str] | None = None) -> str:
    """Render notebook markdown (``attachment:`` images resolved to data URIs), sanitized.

    >>> markdown_to_html("**bold** [x](javascript:alert(1))")
    '<p><strong>bold</strong> [x](javascript:alert(1))</p>\\n'
    """
    if attachments:
        source = _ATTACHMENT.sub(lambda m: attachments.get(m.group(1), m.group(0)), source)
    return sanitize_html(_markdown().render(source))


def _image_uri(mime: str, raw: Any) -> str | None:
    """A checked ``data:`` URI for an output's image, None when it is not valid base64."""
    text = notebook_text(raw)
    if mime == "image/svg+xml":
        # Jupyter keeps SVG as text; shown through <img>, its scripts never run.
        payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    else:
        payload = "".join(text.split())
        if not _BASE64.fullmatch(payload) or len(payload) % 4:
            return None
        try:
            base64.b64decode(payload[:4096], validate=True)
        except binascii.Error:
            return None
    return f"data:{mime};base64,{payload}"


def _attachments(cell: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    raw = cell.get("attachments")
    if not isinstance(raw, dict):
        return found
    for name, bundle in raw.items():
        if not isinstance(bundle, dict):
            continue
        for mime in _IMAGE_TYPES:
            if mime in bundle and len(notebook_text(bundle[mime])) <= MAX_IMAGE_BYTES:
                uri = _image_uri(mime, bundle[mime])
                if uri is not None:
                    found[f"{name}"] = uri
                    break
    return found


class _Renderer:
    def __init__(self, nb: dict[str, Any], max_output_chars: int) -> None:
        self.nb = nb
        self.max_output_chars = max(1_000, max_output_chars)
        self.lexer = self._lexer(nb.get("metadata"))

    @staticmethod
    def _lexer(metadata: Any) -> Lexer:
        names: list[str] = []
        if isinstance(metadata, dict):
            for key, field in (("language_info", "name"), ("kernelspec", "language")):
                section = metadata.get(key)
                if isinstance(section, dict) and isinstance(section.get(field), str):
                    names.append(section[field])
        for name in names:
            try:
                found: Lexer = get_lexer_by_name(name)
                return found
            except ClassNotFound:
                continue
        fallback: Lexer = PythonLexer()
        return fallback

    # -- text blocks ----------------------------------------------------------------------------
    def _limit(self, text: str) -> tuple[str, str, str]:
        """(start, end, note): the whole text as start when within max_output_chars."""
        cap = self.max_output_chars
        if len(text) <= cap:
            return text, "", ""
        head, tail = text[: cap * 3 // 4], text[-(cap // 4) :]
        # Cut at line ends so no line is shown in part.
        head = head[: head.rfind("\n") + 1] or head
        tail = tail[tail.find("\n") + 1 :] if "\n" in tail[:-1] else tail
        left = len(text) - len(head) - len(tail)
        return head, tail, f"[... {left:,} characters not shown: the output is too long ...]"

    def _block(self, text: str, css: str, highlight_code: bool = False) -> str:
        """A text block; a long one shows its start and folds the rest into <details>."""
        head, tail, note = self._limit(text)

        def esc(part: str) -> str:
            if not part:
                return ""
            if highlight_code:
                return highlight(part, self.lexer, _formatter()).rstrip("\n")
            return html.escape(part)

        pre = '<pre class="hl">' if highlight_code else "<pre>"
        lines = head.split("\n")
        if not note and len(lines) <= FOLD_LINES and len(head) <= FOLD_CHARS:
            return f'<div class="{css}">{pre}{esc(head)}</pre></div>'
        visible = "\n".join(lines[:FOLD_LINES])
        if len(visible) > FOLD_CHARS:
            visible = visible[:FOLD_CHARS]
            if "\n" in visible:  # end on a whole line
                visible = visible[: visible.rfind("\n")]
        rest = head[len(visible) :].removeprefix("\n")
        folded = esc(rest)
        if note:
            folded += f'<span class="elided">{html.escape(note)}</span>\n' + esc(tail)
        hidden = len(rest) + len(tail)
        more = rest.count("\n") + tail.count("\n") + 1
        summary = f"show {more:,} more lines ({hidden:,} characters)"
        return (
            f'<div class="{css}">{pre}{esc(visible)}</pre>'
            f'<details class="more"><summary>{summary}</summary>{pre}{folded}</pre></details></div>'
        )

    # -- outputs --------------------------------------------------------------------------------
    def _rich(self, output: dict[str, Any]) -> str:
        data = output.get("data")
        if not isinstance(data, dict):
            return ""
        for mime in _IMAGE_TYPES:
            if mime in data:
                raw = data[mime]
                size = len(notebook_text(raw))
                if size > MAX_IMAGE_BYTES:
                    return self._note(f"[{mime} output of {size / 1e6:.1f} MB: too large to show]")
                uri = _image_uri(mime, raw)
                if uri is None:
                    return self._note(f"[{mime} output is not valid base64: not shown]")
                alt = html.escape(notebook_text(data.get("text/plain")).strip()[:200], quote=True)
                return f'<div class="out image"><img src="{uri}" alt="{alt}"></div>'
        if "text/html" in data:
            cleaned = sanitize_html(self._limit(notebook_text(data["text/html"]))[0])
            if cleaned.strip():
                return f'<div class="out html">{cleaned}</div>'
        if "text/markdown" in data:
            rendered = markdown_to_html(self._limit(notebook_text(data["text/markdown"]))[0])
            return f'<div class="out md">{rendered}</div>'
        if "text/plain" in data:
            return self._block(
                clean_terminal_text(notebook_text(data["text/plain"])).strip("\n"), "out"
            )
        if "text/latex" in data:
            return self._block(notebook_text(data["text/latex"]).strip("\n"), "out")
        if "application/json" in data:
            return self._block(json.dumps(data["application/json"], indent=1), "out")
        kinds = ", ".join(str(k) for k in data) or "empty"
        return self._note(f"[output: {kinds}: not shown]")

    @staticmethod
    def _note(text: str) -> str:
        return f'<div class="out note">{html.escape(text)}</div>'

    def _error(self, output: dict[str, Any]) -> str:
        name = html.escape(notebook_text(output.get("ename")) or "Error")
        value = html.escape(clean_terminal_text(notebook_text(output.get("evalue"))).strip()[:2000])
        raw = output.get("traceback")
        trace = "\n".join(notebook_text(t) for t in raw) if isinstance(raw, list) else ""
        lines = clean_terminal_text(trace).strip("\n")
        block = self._block(lines, "trace") if lines.strip() else ""
        return f'<div class="out error"><div class="ename">{name}: {value}</div>{block}</div>'

    def _outputs(self, raw: Any) -> str:
        if not isinstance(raw, list):
            return ""
        parts: list[str] = []
        stream_name, stream = "", list[str]()

        def flush() -> None:
            # Consecutive writes to one stream (an epoch loop) read as one block.
            if stream:
                text = clean_terminal_text("".join(stream)).strip("\n")
                if text.strip():
                    parts.append(self._block(text, f"out {stream_name}"))
                stream.clear()

        for output in raw:
            if not isinstance(output, dict):
                continue
            kind = output.get("output_type")
            if kind == "stream":
                name = "stderr" if output.get("name") == "stderr" else "stdout"
                if name != stream_name:
                    flush()
                    stream_name = name
                stream.append(notebook_text(output.get("text")))
                continue
            flush()
            if kind in ("execute_result", "display_data"):
                parts.append(self._rich(output))
            elif kind == "error":
                parts.append(self._error(output))
        flush()
        return "".join(parts)

    # -- cells ----------------------------------------------------------------------------------
    def cell(self, number: int, cell: Any) -> str:
        if not isinstance(cell, dict):
            return ""
        kind = notebook_text(cell.get("cell_type")) or "code"
        source = notebook_text(cell.get("source"))
        outputs = self._outputs(cell.get("outputs")) if kind == "code" else ""
        if not source.strip() and not outputs:
            return ""  # the judge's text skips empty cells too; numbers stay positional
        label = f"[{number}]"
        if kind == "markdown":
            body = f'<div class="md">{markdown_to_html(source, _attachments(cell))}</div>'
        elif kind == "code":
            count = cell.get("execution_count")
            if isinstance(count, int):
                label += f" {count}"
            body = self._block(source.strip("\n"), "src", highlight_code=True) if source else ""
            body += outputs
        else:
            body = self._block(source, "raw")
        return (
            f'<section class="cell {html.escape(kind, quote=True)}" id="cell-{number}">'
            f'<div class="no" title="cell {number}">{html.escape(label)}</div>'
            f'<div class="body">{body}</div></section>'
        )


def notebook_to_html(
    ipynb: str | bytes | dict[str, Any],
    *,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    with_css: bool = False,
    source: str = "",
) -> str:
    """A notebook as one safe HTML fragment (``<article class="ja-nb">``); never executed.

    ``ipynb`` is the ``.ipynb`` JSON (nbformat 2-4). ``with_css`` prepends the ``<style>``
    the fragment needs (or embed ``notebook_css()`` yourself). A file that is not a notebook
    raises DataError naming ``source``.

    >>> nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    ...     {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "x = 1",
    ...      "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\\n"}]}]}
    >>> html = notebook_to_html(nb)
    >>> 'id="cell-1"' in html and '<pre>1</pre>' in html
    True
    """
    nb = parse_notebook(ipynb, source=source)
    renderer = _Renderer(nb, max_output_chars)
    cells = "".join(renderer.cell(n, c) for n, c in enumerate(nb.get("cells") or [], 1))
    style = f"<style>{notebook_css()}</style>" if with_css else ""
    return f'{style}<article class="ja-nb">{cells}</article>'


def notebook_document(
    ipynb: str | bytes | dict[str, Any],
    *,
    title: str = "notebook",
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> str:
    """A whole offline HTML page for one notebook, with a CSP that allows no script at all.

    >>> page = notebook_document({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
    ...                           "cells": []}, title="<x>")
    >>> "script-src" not in page and "&lt;x&gt;" in page
    True
    """
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'"
    body = notebook_to_html(ipynb, max_output_chars=max_output_chars)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>body{{margin:16px auto;max-width:1100px;"
        f"padding:0 12px}}{notebook_css()}</style></head><body>{body}</body></html>\n"
    )
