"""Render a Jupyter notebook as judge-ready text that fits a token budget.

Cells become ``[cell 3 | code]`` blocks followed by their outputs; images, widgets and HTML
are replaced by short notes, so a 4 MB notebook full of base64 plots costs a few thousand
tokens. Nothing is ever executed.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

import nbformat

from judgealign.errors import DataError
from judgealign.render.tokens import (
    clip_chars,
    estimate_tokens,
    largest_fitting,
    truncate_to_tokens,
)

# Per-output caps applied before any budgeting: a 10,000-line training log says no more
# to a judge than its first and last lines.
OUTPUT_CHAR_CAP = 1500
HTML_CHAR_CAP = 500
TRACEBACK_LINES = 6
# Below these allowances an output or a cell is not worth keeping in part.
OUTPUT_MIN_CHARS = 80
SOURCE_MIN_CHARS = 80
# When even headers do not fit, each kept cell shows this much of its start.
OUTLINE_CHARS = 40

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_DATA_URI = re.compile(r"data:(image/[\w.+-]+);base64,[A-Za-z0-9+/=]+")
_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)
# Inside a cell the marker needs no blank line after it: the next header follows.
_MARK = "\n[... {n} characters trimmed ...]"
_BLANKS = re.compile(r"\n\s*\n\s*\n+")
_SPACES = re.compile(r"[ \t]+")


@dataclass(frozen=True)
class _Output:
    kind: str  # short name used when outputs are summarized
    header: str
    body: str = ""


@dataclass(frozen=True)
class _Cell:
    number: int
    kind: str
    source: str
    outputs: tuple[_Output, ...]


def notebook_text(value: Any) -> str:
    """A notebook text field (a string or a list of lines) as one string.

    >>> notebook_text(["a\\n", "b"])
    'a\\nb'
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v if isinstance(v, str) else str(v) for v in value)
    return str(value)


def clean_terminal_text(text: str) -> str:
    """Strip ANSI escapes and replay carriage returns (progress bars redraw one line)."""
    text = _ANSI.sub("", text)
    if "\r" in text:
        text = "\n".join(
            line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n")
        )
    return text


def _clip(text: str, cap: int, *, head_fraction: float) -> str:
    return clip_chars(text, cap, head_fraction=head_fraction, marker=_MARK)


def _no_data_uris(text: str) -> str:
    return _DATA_URI.sub(lambda m: f"[image: {m.group(1)}]", text) if "base64," in text else text


def parse_notebook(nb_json: str | bytes | dict[str, Any], *, source: str = "") -> dict[str, Any]:
    """Parse ``.ipynb`` JSON (nbformat 2-4) into a version-4 notebook mapping.

    Raises DataError naming ``source`` when the text is not JSON or not a notebook.

    >>> parse_notebook('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}')["cells"]
    []
    """
    where = source or "notebook"
    data: Any = nb_json
    if isinstance(nb_json, str | bytes):
        try:
            data = json.loads(nb_json)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{where}: not valid JSON (line {exc.lineno}: {exc.msg}); "
                "give a .ipynb file saved by Jupyter"
            ) from None
        except UnicodeDecodeError:
            raise DataError(
                f"{where}: not UTF-8 text; give a .ipynb file saved by Jupyter"
            ) from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise DataError(
            f"{where}: not a Jupyter notebook (no 'nbformat' field); give a .ipynb file"
        )
    major = data["nbformat"]
    if not isinstance(major, int) or major not in (2, 3, 4):
        raise DataError(
            f"{where}: unsupported nbformat {major!r}; re-save the notebook with Jupyter "
            "(version 4)"
        )
    key = "cells" if major == 4 else "worksheets"
    if not isinstance(data.get(key), list):
        raise DataError(f"{where}: the notebook has no '{key}' list; the file is damaged")
    if major == 4:
        return data
    try:
        nb_obj = nbformat.from_dict(data)  # type: ignore[no-untyped-call]
        converted: dict[str, Any] = nbformat.convert(nb_obj, 4)  # type: ignore[no-untyped-call]
    except Exception as exc:  # nbformat raises assorted errors on damaged old notebooks
        raise DataError(f"{where}: cannot convert nbformat {major} notebook ({exc})") from None
    return converted


def _rich_output(output: dict[str, Any], output_type: str) -> _Output:
    data = output.get("data")
    if not isinstance(data, dict):
        data = {}
    header = "[output: result]" if output_type == "execute_result" else "[output: display]"
    images = [m for m in data if m.startswith("image/")]
    plain = clean_terminal_text(notebook_text(data.get("text/plain"))).strip("\n")
    if images:
        notes = " ".join(f"[image: {m}]" for m in images)
        # "<Figure size 640x480 with 1 Axes>" and similar reprs add nothing to the note.
        if plain.strip() and not plain.lstrip().startswith("<"):
            return _Output("image", notes, _clip(plain, OUTPUT_CHAR_CAP, head_fraction=0.5))
        return _Output("image", notes)
    if "text/markdown" in data:
        body = _no_data_uris(notebook_text(data["text/markdown"]))
    elif plain.strip():
        body = plain
    elif "text/html" in data:
        stripped = _TAGS.sub(" ", _no_data_uris(notebook_text(data["text/html"])))
        text = _BLANKS.sub("\n\n", _SPACES.sub(" ", html.unescape(stripped))).strip()
        return _Output(
            "html",
            "[output: html, shown as text]",
            _clip(text, HTML_CHAR_CAP, head_fraction=1),
        )
    elif "text/latex" in data:
        body = notebook_text(data["text/latex"])
    elif "application/json" in data:
        body = json.dumps(data["application/json"], ensure_ascii=False)
    else:
        kinds = ", ".join(data) or "empty"
        return _Output("other", f"[output: {kinds}]")
    return _Output(
        "result" if output_type == "execute_result" else "display",
        header,
        _clip(body.strip("\n"), OUTPUT_CHAR_CAP, head_fraction=0.5),
    )


def _error_output(output: dict[str, Any]) -> _Output:
    name = notebook_text(output.get("ename")) or "Error"
    message = clean_terminal_text(notebook_text(output.get("evalue"))).strip()
    message = clip_chars(message, 300, head_fraction=1, marker=" [...]")
    traceback = output.get("traceback")
    lines = (
        clean_terminal_text("\n".join(notebook_text(t) for t in traceback)).splitlines()
        if traceback
        else []
    )
    lines = [ln for ln in lines if ln.strip()]
    tail = "\n".join(lines[-TRACEBACK_LINES:])
    body = _clip(tail, OUTPUT_CHAR_CAP, head_fraction=0.3)
    return _Output(f"error {name}", f"[error: {name}: {message}]", body)


def _outputs(raw: Any) -> tuple[_Output, ...]:
    if not isinstance(raw, list):
        return ()
    result: list[_Output] = []
    stream_name = ""
    stream: list[str] = []

    def flush() -> None:
        # Consecutive writes to one stream (a training loop printing per epoch) read as one.
        if stream:
            text = clean_terminal_text("".join(stream)).strip("\n")
            if text.strip():
                body = _clip(text, OUTPUT_CHAR_CAP, head_fraction=0.5)
                result.append(_Output(stream_name, f"[output: {stream_name}]", body))
            stream.clear()

    for output in raw:
        if not isinstance(output, dict):
            continue
        output_type = output.get("output_type")
        if output_type == "stream":
            name = notebook_text(output.get("name")) or "stdout"
            if name != stream_name:
                flush()
                stream_name = name
            stream.append(notebook_text(output.get("text")))
            continue
        flush()
        if output_type in ("execute_result", "display_data"):
            result.append(_rich_output(output, output_type))
        elif output_type == "error":
            result.append(_error_output(output))
        else:
            result.append(_Output("other", f"[output: {output_type}]"))
    flush()
    return tuple(result)


def _cells(nb: dict[str, Any], where: str) -> list[_Cell]:
    cells: list[_Cell] = []
    for number, cell in enumerate(nb["cells"], 1):
        if not isinstance(cell, dict):
            raise DataError(f"{where}: cell {number} is not a JSON object; the file is damaged")
        kind = notebook_text(cell.get("cell_type")) or "code"
        source = notebook_text(cell.get("source"))
        if kind == "markdown":
            source = _no_data_uris(source)
        outputs = _outputs(cell.get("outputs")) if kind == "code" else ()
        # Empty cells cost tokens and say nothing; numbering stays positional regardless.
        if source.strip() or outputs:
            cells.append(_Cell(number, kind, source.strip("\n"), outputs))
    return cells


def _summary(outputs: tuple[_Output, ...]) -> str:
    counts: dict[str, int] = {}
    for out in outputs:
        counts[out.kind] = counts.get(out.kind, 0) + 1
    kinds = ", ".join(kind if n == 1 else f"{kind} x{n}" for kind, n in counts.items())
    return f"[outputs trimmed: {kinds}]"


def _render(
    title: str,
    cells: list[_Cell],
    *,
    source_cap: int | None = None,
    output_cap: int | None = None,
    summarize_outputs: bool = False,
) -> str:
    parts = [title]
    for cell in cells:
        parts.append(f"\n[cell {cell.number} | {cell.kind}]")
        if cell.source:
            src = cell.source
            parts.append(src if source_cap is None else _clip(src, source_cap, head_fraction=0.8))
        if not cell.outputs:
            continue
        if summarize_outputs:
            parts.append(_summary(cell.outputs))
            continue
        for out in cell.outputs:
            parts.append(out.header)
            if out.body:
                body = out.body
                parts.append(
                    body if output_cap is None else _clip(body, output_cap, head_fraction=0.5)
                )
    return "\n".join(parts)


def _render_omitting(title: str, cells: list[_Cell], keep: int) -> str:
    """Keep ``keep`` cells, spread evenly and always the first and last, as outline lines."""
    last = len(cells) - 1
    if keep >= len(cells):
        chosen = list(range(len(cells)))
    elif keep <= 1:
        chosen = [0]
    else:
        chosen = sorted({round(i * last / (keep - 1)) for i in range(keep)})
    parts = [title]
    previous = -1
    for index in [*chosen, len(cells)]:
        if index > previous + 1:
            first, end = cells[previous + 1].number, cells[index - 1].number
            span = f"cell {first}" if first == end else f"cells {first}-{end}"
            parts.append(f"[... {span} omitted ...]")
        if index < len(cells):
            cell = cells[index]
            start = clip_chars(cell.source, OUTLINE_CHARS, head_fraction=1, marker=" [...]")
            parts.append(f"[cell {cell.number} | {cell.kind}] {start}")
        previous = index
    return "\n".join(parts)


def _title(nb: dict[str, Any], cells: list[_Cell]) -> str:
    counts: dict[str, int] = {}
    for cell in cells:
        counts[cell.kind] = counts.get(cell.kind, 0) + 1
    detail = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "empty"
    language = ""
    metadata = nb.get("metadata")
    if isinstance(metadata, dict):
        info, kernel = metadata.get("language_info"), metadata.get("kernelspec")
        if isinstance(info, dict) and isinstance(info.get("name"), str):
            language = f" | {info['name']}"
        elif isinstance(kernel, dict) and isinstance(kernel.get("language"), str):
            language = f" | {kernel['language']}"
    plural = "" if len(cells) == 1 else "s"
    return f"[notebook{language} | {len(cells)} cell{plural}: {detail}]"


def render_notebook(
    nb_json: str | bytes | dict[str, Any], *, budget_tokens: int = 6000, source: str = ""
) -> str:
    """Render a notebook as numbered cells with trimmed outputs, within ``budget_tokens``.

    When the full text is too long, outputs are trimmed first, then long cells are cut to a
    common length (short cells stay whole, every cell keeps its header and start); only a
    notebook with more cells than the budget has headers for loses whole cells from view.

    >>> nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    ...     {"cell_type": "code", "source": "print(1)", "metadata": {}, "execution_count": 1,
    ...      "outputs": [{"output_type": "stream", "name": "stdout", "text": "1\\n"}]}]}
    >>> print(render_notebook(nb))
    [notebook | 1 cell: 1 code]
    <BLANKLINE>
    [cell 1 | code]
    print(1)
    [output: stdout]
    1
    """
    where = source or "notebook"
    nb = parse_notebook(nb_json, source=where)
    cells = _cells(nb, where)
    title = _title(nb, cells)
    full = _render(title, cells)
    if estimate_tokens(full) <= budget_tokens:
        return full
    max_out = max((len(o.body) for c in cells for o in c.outputs), default=0)
    max_src = max((len(c.source) for c in cells), default=0)
    found = largest_fitting(
        lambda cap: _render(title, cells, output_cap=cap), OUTPUT_MIN_CHARS, max_out, budget_tokens
    )
    if found is None:
        found = largest_fitting(
            lambda cap: _render(title, cells, source_cap=cap, output_cap=OUTPUT_MIN_CHARS),
            SOURCE_MIN_CHARS,
            max_src,
            budget_tokens,
        )
    if found is None:
        found = largest_fitting(
            lambda cap: _render(title, cells, source_cap=cap, summarize_outputs=True),
            OUTLINE_CHARS,
            max_src,
            budget_tokens,
        )
    if found is None:
        found = largest_fitting(
            lambda keep: _render_omitting(title, cells, keep), 1, len(cells), budget_tokens
        )
    if found is None:
        return truncate_to_tokens(title, budget_tokens)
    return found[1]


def notebook_outline(nb_json: str | bytes | dict[str, Any], *, source: str = "") -> str:
    """One line per non-empty cell: its header and the start of its first line.

    >>> nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    ...     {"cell_type": "markdown", "source": "# Intro\\nText", "metadata": {}}]}
    >>> notebook_outline(nb)
    '[cell 1 | markdown] # Intro'
    """
    nb = parse_notebook(nb_json, source=source or "notebook")
    lines = []
    for cell in _cells(nb, source or "notebook"):
        first = cell.source.strip().split("\n", 1)[0] if cell.source.strip() else ""
        first = clip_chars(first, 80, head_fraction=1, marker=" [...]")
        outs = f" ({len(cell.outputs)} outputs)" if cell.outputs else ""
        lines.append(f"[cell {cell.number} | {cell.kind}] {first}{outs}".rstrip())
    return "\n".join(lines)
