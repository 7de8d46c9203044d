"""Notebooks an agent hands back: checked, normalized, and made from a chat model's Markdown.

Chat models write notebooks more reliably as Markdown with fenced code blocks than as
``.ipynb`` JSON, so the chat adapter asks for that and converts it here: each ```python
fence becomes a code cell and the text between fences a markdown cell. Fences are found by
markdown-it-py (the CommonMark parser rich already depends on), which handles ``~~~`` fences,
longer backtick runs and indented text the way a Markdown viewer would.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import nbformat

from judgealign.agent.task import AgentError

_CODE_INFOS = {"", "python", "py", "python3", "ipython", "ipython3", "jupyter"}
MAX_NOTEBOOK_BYTES = 20_000_000


def notebook_from_markdown(text: str) -> Any:
    """An nbformat v4 notebook from Markdown: fenced Python blocks become code cells, the
    text around them markdown cells. A whole ``.ipynb`` JSON answer is taken as it is.

    >>> nb = notebook_from_markdown("# Churn\\nLoad it.\\n```python\\nimport pandas as pd\\n```")
    >>> [c.cell_type for c in nb.cells]
    ['markdown', 'code']
    """
    from markdown_it import MarkdownIt

    stripped = text.strip()
    if stripped.startswith("{") and '"cells"' in stripped:
        return parse_notebook_text(stripped, where="the model's answer")
    lines = text.splitlines()
    cells: list[dict[str, Any]] = []
    cursor = 0

    # Plain dicts, validated once as a whole by the caller: nbformat's cell factories run a
    # JSON-schema validation per cell, the slowest part of handling a model's answer.
    def prose(upto: int) -> None:
        chunk = "\n".join(lines[cursor:upto]).strip()
        if chunk:
            cells.append({"cell_type": "markdown", "metadata": {}, "source": chunk})

    for token in MarkdownIt().parse(text):
        if token.type != "fence" or token.map is None:
            continue
        info = token.info.strip().split(maxsplit=1)[0].lower() if token.info.strip() else ""
        if info not in _CODE_INFOS:
            continue  # output samples, shell sessions, data: stay in the prose
        start, end = token.map
        prose(start)
        cells.append(
            {
                "cell_type": "code",
                "metadata": {},
                "source": token.content.rstrip("\n"),
                "outputs": [],
                "execution_count": None,
            }
        )
        cursor = end
    prose(len(lines))
    for number, cell in enumerate(cells, 1):
        cell["id"] = f"cell-{number}"
    from_dict: Any = nbformat.from_dict
    return from_dict(
        {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"},
            },
            "cells": cells,
        }
    )


def parse_notebook_text(text: str | bytes, *, where: str) -> Any:
    """A valid nbformat v4 notebook from ``.ipynb`` text, or AgentError("invalid").

    Older formats are upgraded, missing cell ids added; a notebook with no non-empty cell is
    refused (there is nothing to judge).
    """
    if len(text) > MAX_NOTEBOOK_BYTES:
        raise AgentError(f"{where}: notebook larger than {MAX_NOTEBOOK_BYTES} bytes", "invalid")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise AgentError(f"{where}: not notebook JSON ({exc})", "invalid") from None
    return notebook_from_dict(data, where=where)


def notebook_from_dict(data: Any, *, where: str) -> Any:
    """``data`` (a parsed ``.ipynb``) checked and normalized; see ``parse_notebook_text``."""
    if not isinstance(data, dict) or "cells" not in data or "nbformat" not in data:
        raise AgentError(f"{where}: not a Jupyter notebook (no nbformat/cells)", "invalid")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbf: Any = nbformat  # nbformat ships no type hints
            nb = nbf.reads(json.dumps(data), as_version=4)
            _, normalized = nbf.validator.normalize(nb)
            nb = nbf.from_dict(normalized)
            nbf.validate(nb)
    except Exception as exc:  # nbformat raises several types for one meaning: invalid
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise AgentError(f"{where}: invalid notebook ({first})", "invalid") from None
    if not any(str(c.get("source", "")).strip() for c in nb.cells):
        raise AgentError(f"{where}: the notebook has no non-empty cell", "invalid")
    return nb


def notebook_json(nb: Any) -> str:
    """The notebook as ``.ipynb`` text (nbformat v4), newline-terminated."""
    writes: Any = nbformat.writes
    return str(writes(nb, version=4)) + "\n"


def coerce_notebook(value: Any, *, where: str) -> Any:
    """Whatever an agent returned (JSON text, Markdown text, a mapping, a notebook node, a
    path to a ``.ipynb``) as a checked notebook."""
    if isinstance(value, Path):
        if not value.is_file():
            raise AgentError(f"{where}: no notebook at {value}", "invalid")
        return parse_notebook_text(value.read_bytes(), where=str(value))
    if isinstance(value, bytes):
        return parse_notebook_text(value, where=where)
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            return parse_notebook_text(value, where=where)
        nb = notebook_from_markdown(value)
        return notebook_from_dict(json.loads(notebook_json(nb)), where=where)
    if isinstance(value, dict):
        return notebook_from_dict(json.loads(json.dumps(value, default=str)), where=where)
    raise AgentError(
        f"{where}: the agent returned {type(value).__name__}; return notebook JSON, a mapping, "
        "a path, or write task.notebook_path",
        "invalid",
    )
