"""A notebook as probes see it: cells that remember where they came from, and the record of
exactly what a probe changed (cell by cell: before, after and a diff).

Probes work on a copy and never on the file: :class:`Notebook` deep-copies the JSON, tracks
each cell's index in the original (``origin``; ``None`` for a cell a probe inserted) and
:func:`changes_between` turns the two versions into :class:`CellChange` records.
"""

from __future__ import annotations

import copy
import difflib
import functools
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from judgealign.errors import DataError
from judgealign.stress.code import CellCode, Edit, apply_edits

CellAction = Literal["edited", "inserted", "deleted", "moved"]


@functools.lru_cache(maxsize=8192)
def parse_cell(text: str) -> CellCode:
    """A cell's source parsed; cached, since every probe reads the same cells (callers treat
    the result as read-only)."""
    return CellCode.parse(text)


def cell_text(value: Any) -> str:
    """A cell's source (a string or a list of lines in the file) as one string."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


class CellChange(BaseModel):
    """One cell a probe changed. ``cell`` is its index in the original notebook (``None``
    when inserted), ``new_cell`` in the changed one (``None`` when deleted)."""

    model_config = ConfigDict(frozen=True)

    action: CellAction
    cell: int | None
    new_cell: int | None
    cell_type: str
    before: str = ""
    after: str = ""
    diff: str = ""
    outputs_changed: bool = False


@dataclass(frozen=True)
class Statement:
    """A top-level statement of a code cell, in notebook order."""

    cell: int
    index: int
    node: Any  # ast.stmt
    code: CellCode


class Notebook:
    """A mutable copy of a version-4 notebook for one probe.

    >>> nb = Notebook({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    ...     {"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [],
    ...      "execution_count": 1, "id": "a"}]})
    >>> nb.set_source(0, "x = 2"); [c.action for c in changes_between(nb.original, nb)]
    ['edited']
    """

    def __init__(self, data: dict[str, Any], *, item: str = "") -> None:
        if not isinstance(data.get("cells"), list):
            raise DataError(f"{item or 'notebook'}: no cells list; give a version-4 notebook")
        self.item = item
        self.data = copy.deepcopy(data)
        self.cells: list[dict[str, Any]] = self.data["cells"]
        self.origin: list[int | None] = list(range(len(self.cells)))
        self.notes: list[str] = []
        # ``data`` itself is the starting point the changes are measured against: it is read,
        # never written (the copy above is what probes edit).
        self.original = _Frozen(data)

    @classmethod
    def from_json(cls, text: str, *, item: str = "") -> Notebook:
        from judgealign.render.notebook import parse_notebook

        return cls(parse_notebook(text, source=item), item=item)

    # -- cells --------------------------------------------------------------------------------
    def kind(self, i: int) -> str:
        return str(self.cells[i].get("cell_type", "code"))

    def source(self, i: int) -> str:
        return cell_text(self.cells[i].get("source"))

    def set_source(self, i: int, text: str) -> None:
        """Replace cell ``i``'s source, in the form the file used (string or line list)."""
        cell = self.cells[i]
        cell["source"] = (
            text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text
        )

    def code(self, i: int) -> CellCode:
        """Cell ``i`` parsed (cached by its text)."""
        return parse_cell(self.source(i))

    def code_cells(self) -> list[int]:
        return [i for i in range(len(self.cells)) if self.kind(i) == "code"]

    def python_cells(self) -> list[int]:
        """Code cells that parse as Python (after masking IPython lines)."""
        return [i for i in self.code_cells() if self.code(i).ok]

    def statements(self) -> list[Statement]:
        """Every top-level statement of every Python cell, in notebook order."""
        out: list[Statement] = []
        for i in self.python_cells():
            code = self.code(i)
            assert code.tree is not None
            out.extend(Statement(i, n, stmt, code) for n, stmt in enumerate(code.tree.body))
        return out

    def edit(self, edits: dict[int, list[Edit]]) -> None:
        """Apply per-cell edits (computed on the cells' current text) all at once."""
        for i, cell_edits in edits.items():
            if cell_edits:
                self.set_source(i, apply_edits(self.source(i), cell_edits))

    def drop_cells_without_code(self, cells: set[int]) -> None:
        """Delete those of ``cells`` (current indices) whose code an edit removed entirely
        (nothing left but blank lines and comments that described it)."""
        for i in sorted(cells, reverse=True):
            if i >= len(self.cells) or self.kind(i) != "code":
                continue
            code = self.code(i)
            if not code.text.strip() or (code.ok and code.tree and not code.tree.body):
                self.delete(i)

    def clear_outputs(self, i: int) -> None:
        if self.kind(i) == "code" and self.cells[i].get("outputs"):
            self.cells[i]["outputs"] = []

    def new_cell(self, kind: str, source: str) -> dict[str, Any]:
        """A cell of ``kind`` in this notebook's format (an ``id`` where nbformat 4.5+ has them)."""
        cell: dict[str, Any] = {"cell_type": kind, "metadata": {}, "source": source}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        if any("id" in c for c in self.cells) or int(self.data.get("nbformat_minor", 0)) >= 5:
            digest = hashlib.sha256(f"{self.item}\n{len(self.cells)}\n{source}".encode())
            taken = {c.get("id") for c in self.cells}
            n = 0
            while (cid := digest.hexdigest()[n : n + 8]) in taken:
                n += 1
            cell["id"] = cid
        if self.cells and isinstance(self.cells[0].get("source"), list):
            cell["source"] = source.splitlines(keepends=True)
        return cell

    def insert(self, at: int, kind: str, source: str) -> None:
        self.cells.insert(at, self.new_cell(kind, source))
        self.origin.insert(at, None)

    def delete(self, i: int) -> None:
        del self.cells[i]
        del self.origin[i]

    def reorder(self, order: list[int]) -> None:
        """Put the cells in ``order`` (a permutation of the current indices)."""
        if sorted(order) != list(range(len(self.cells))):
            raise ValueError("not a permutation of the cells")
        self.cells[:] = [self.cells[i] for i in order]
        self.origin[:] = [self.origin[i] for i in order]

    def note(self, text: str) -> None:
        self.notes.append(text)

    def to_json(self) -> str:
        """The notebook as Jupyter writes it (one-space indent, non-ASCII kept)."""
        return json.dumps(self.data, indent=1, ensure_ascii=False) + "\n"


class _Frozen:
    """The notebook a probe started from (read-only by convention)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.cells: list[dict[str, Any]] = data["cells"]
        self.origin: list[int | None] = list(range(len(self.cells)))


def _diff(before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        "before",
        "after",
        n=1,
    )
    return "".join(ln if ln.endswith("\n") else ln + "\n" for ln in lines)


def _stable(order: list[int]) -> set[int]:
    """The longest increasing run of original indices: cells not in it were moved."""
    if not order:
        return set()
    tails: list[int] = []
    tails_at: list[int] = []
    parent = [-1] * len(order)
    import bisect

    for pos, value in enumerate(order):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tails_at.append(pos)
        else:
            tails[k] = value
            tails_at[k] = pos
        parent[pos] = tails_at[k - 1] if k else -1
    keep: set[int] = set()
    pos = tails_at[-1]
    while pos >= 0:
        keep.add(order[pos])
        pos = parent[pos]
    return keep


def changes_between(original: _Frozen | Notebook, changed: Notebook) -> list[CellChange]:
    """Cell by cell, what ``changed`` differs from ``original`` in (source and outputs)."""
    out: list[CellChange] = []
    seen = [o for o in changed.origin if o is not None]
    stable = _stable(seen)
    for new, origin in enumerate(changed.origin):
        cell = changed.cells[new]
        kind = str(cell.get("cell_type", "code"))
        after = cell_text(cell.get("source"))
        if origin is None:
            out.append(
                CellChange(
                    action="inserted",
                    cell=None,
                    new_cell=new,
                    cell_type=kind,
                    after=after,
                    diff=_diff("", after),
                )
            )
            continue
        old = original.cells[origin]
        before = cell_text(old.get("source"))
        outputs = old.get("outputs") != cell.get("outputs")
        if before != after or outputs or old.get("cell_type") != kind:
            out.append(
                CellChange(
                    action="edited",
                    cell=origin,
                    new_cell=new,
                    cell_type=kind,
                    before=before,
                    after=after,
                    diff=_diff(before, after),
                    outputs_changed=outputs,
                )
            )
        elif origin not in stable:
            out.append(
                CellChange(action="moved", cell=origin, new_cell=new, cell_type=kind, after=after)
            )
    gone = set(range(len(original.cells))) - set(seen)
    for origin in sorted(gone):
        old = original.cells[origin]
        before = cell_text(old.get("source"))
        out.append(
            CellChange(
                action="deleted",
                cell=origin,
                new_cell=None,
                cell_type=str(old.get("cell_type", "code")),
                before=before,
                diff=_diff(before, ""),
                outputs_changed=bool(old.get("outputs")),
            )
        )
    return out
