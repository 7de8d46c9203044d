"""Cell layout: gathering or scattering imports, folding markdown into comments, one giant
cell, and writing nbformat v4 with in-order execution counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import nbformat

# nbformat ships no type hints for its v4 factories.
_V4: Any = nbformat.v4


@dataclass(frozen=True)
class CellSpec:
    """One cell before it becomes nbformat: text, a plain-text output and tags."""

    kind: Literal["markdown", "code"]
    source: str
    output: str = ""
    result: bool = False
    tags: tuple[str, ...] = ()
    imports: tuple[str, ...] = field(default=())


def import_block(lines: list[str]) -> str:
    """Import lines as isort would write them: plain imports first, ``from`` imports merged.

    >>> print(import_block(["from a import x", "import b", "from a import y"]))
    import b
    from a import x, y
    """
    plain = sorted({x for x in lines if x.startswith("import ")})
    names: dict[str, set[str]] = {}
    for x in lines:
        if x.startswith("from "):
            module, _, what = x[5:].partition(" import ")
            names.setdefault(module, set()).update(n.strip() for n in what.split(","))
    merged = [
        f"from {m} import {', '.join(sorted(n, key=lambda s: (not s[0].isupper(), s)))}"
        for m, n in sorted(names.items())
    ]
    return "\n".join(plain + merged)


def place_imports(cells: list[CellSpec], *, scattered: bool) -> list[CellSpec]:
    """Gather every cell's imports into the ``imports`` cell, or scatter them to first use."""
    seen: set[str] = set()
    out: list[CellSpec] = []
    gathered: list[str] = []
    for c in cells:
        new = [i for i in dict.fromkeys(c.imports) if i and i not in seen]
        seen.update(new)
        if scattered and new:
            src = f"{import_block(new)}\n{c.source}"
            c = replace(c, source=src, tags=(*c.tags, "imports_at"))
        gathered += new
        out.append(c)
    if scattered:
        return [c for c in out if "imports" not in c.tags]
    block = import_block(gathered)
    return [replace(c, source=block) if "imports" in c.tags else c for c in out]


def _as_comment(text: str) -> str:
    return "\n".join("# " + line.lstrip("# ") for line in text.splitlines())


def comments_for_markdown(cells: list[CellSpec]) -> list[CellSpec]:
    out: list[CellSpec] = []
    pending: list[CellSpec] = []
    for c in cells:
        if c.kind == "markdown":
            pending.append(c)
            continue
        for m in reversed(pending):
            c = replace(c, source=f"{_as_comment(m.source)}\n{c.source}", tags=c.tags + m.tags)
        pending = []
        out.append(c)
    for m in pending:  # markdown after the last code cell joins it
        last = out[-1]
        out[-1] = replace(
            last, source=f"{last.source}\n{_as_comment(m.source)}", tags=last.tags + m.tags
        )
    return out


def giant(cells: list[CellSpec]) -> list[CellSpec]:
    flat = [_displayed(c) for c in comments_for_markdown(cells)]
    first, rest = flat[0], flat[1:]
    outputs = "\n".join(c.output for c in rest if c.output)
    body = CellSpec(
        "code",
        "\n\n".join(c.source for c in rest),
        outputs,
        False,
        tuple(t for c in rest for t in c.tags),
    )
    return [first, body]


def _displayed(c: CellSpec) -> CellSpec:
    # Inside one big cell only printed values show, so a notebook author would wrap them.
    if not c.result:
        return c
    *body, last = c.source.splitlines()
    return replace(c, source="\n".join([*body, f"display({last})"]), result=False)


def cell_refs(cells: list[CellSpec]) -> dict[str, int]:
    """Map each tag to the 1-based number of the first cell holding it."""
    refs: dict[str, int] = {}
    for number, c in enumerate(cells, 1):
        for t in c.tags:
            refs.setdefault(t, number)
    return refs


def to_notebook(cells: list[CellSpec], metadata: dict[str, Any] | None = None) -> Any:
    """An nbformat v4 notebook with in-order execution counts and plain-text outputs."""
    nb = _V4.new_notebook()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        **(metadata or {}),
    }
    count = 0
    for c in cells:
        if c.kind == "markdown":
            nb.cells.append(_V4.new_markdown_cell(c.source))
            continue
        count += 1
        outputs = []
        if c.output and c.result:
            outputs.append(
                _V4.new_output("execute_result", {"text/plain": c.output}, execution_count=count)
            )
        elif c.output:
            outputs.append(_V4.new_output("stream", name="stdout", text=c.output + "\n"))
        nb.cells.append(_V4.new_code_cell(c.source, execution_count=count, outputs=outputs))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i + 1:02d}"
    return nb
