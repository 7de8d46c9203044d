"""Read and write items: notebooks, folders of notebooks, JSONL text items, plain text files.

Item ids of files (``.ipynb``, ``.txt``, ``.md``) are their paths relative to the common root
of everything loaded, in posix form with the suffix (``sub/analysis.ipynb``): unique by
construction and what a person naturally types in a labels file. Labels may also name an item
by its path as given, by a path relative to the working directory, or by its bare file stem
when that is unambiguous: see ``resolve_item_ref`` and ``ItemIndex``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from judgealign.data.files import lines, loads_json, read_text
from judgealign.data.item import Item
from judgealign.errors import DataError

NOTEBOOK_SUFFIX = ".ipynb"
TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def as_text(value: Any) -> str:
    """Input values as text: lists (dialogue turns) one per line, mappings as JSON.

    >>> as_text(["hi", "hello"])
    'hi\\nhello'
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "\n".join(as_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _check_notebook(text: str, where: str) -> None:
    """Fail at load time, not mid-evaluation, on files that are not notebooks: what the
    renderer needs (a known nbformat, a list of cells that are objects) is checked here."""
    data = loads_json(text, where, "give a .ipynb file saved by Jupyter")
    if not isinstance(data, dict) or "nbformat" not in data:
        raise DataError(f"{where}: not a Jupyter notebook (no 'nbformat' field)")
    major = data["nbformat"]
    if isinstance(major, bool) or major not in (2, 3, 4):
        raise DataError(
            f"{where}: unsupported nbformat {major!r}; re-save the notebook with Jupyter"
        )
    key = "cells" if major == 4 else "worksheets"
    cells = data.get(key)
    if not isinstance(cells, list):
        raise DataError(f"{where}: the notebook has no '{key}' list; the file is damaged")
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            raise DataError(f"{where}: cell {number} is not a JSON object; the file is damaged")


def _files_under(folder: Path) -> list[Path]:
    found = [
        p
        for p in folder.rglob(f"*{NOTEBOOK_SUFFIX}")
        if p.is_file() and ".ipynb_checkpoints" not in p.relative_to(folder).parts
    ]
    if not found:
        raise DataError(f"{folder}: no {NOTEBOOK_SUFFIX} files in this folder; check the path")
    return sorted(found)


def _item_from_line(raw: Any, where: str) -> Item:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected a JSON object with 'id' and 'output'")
    if "id" not in raw or "output" not in raw:
        raise DataError(f"{where}: missing field {'id' if 'id' not in raw else 'output'!r}")
    data = dict(raw)
    data["id"] = str(data["id"])
    inputs = data.get("inputs")
    if inputs is not None and not isinstance(inputs, dict):
        raise DataError(f"{where}: 'inputs' must be an object of name -> text")
    if isinstance(inputs, dict):
        data["inputs"] = {str(k): as_text(v) for k, v in inputs.items()}
    if data.get("group") is not None:
        data["group"] = str(data["group"])
    try:
        return Item.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise DataError(f"{where}: field {field}: {err['msg']}") from None


def _read_jsonl(path: Path) -> list[tuple[Item, str]]:
    items: list[tuple[Item, str]] = []
    for number, line in lines(path):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        raw = loads_json(line, where, "one object per line")
        items.append((_item_from_line(raw, where), where))
    return items


def load_items(paths: Sequence[str | Path]) -> list[Item]:
    """Load items from notebooks, folders of notebooks, ``.jsonl`` text items and ``.txt``/``.md``,
    and MLflow traces (``"mlflow:experiment=NAME"``: one item per trace, see
    ``judgealign.data.mlflow_traces``).

    Items keep the order given (folders sorted); a file named twice is loaded once.

    >>> load_items([])
    []
    """
    files: list[Path] = []
    jsonl: list[Path] = []
    roots: list[Path] = []
    traced: list[tuple[Item, str]] = []
    for given in paths:
        if isinstance(given, str) and given.strip().lower().startswith("mlflow:"):
            from judgealign.data.mlflow_traces import read_traces

            traced.extend((item, given) for item in read_traces(given, None).items)
            continue
        path = Path(given)
        if path.is_dir():
            files.extend(_files_under(path))
            roots.append(path.resolve())
        elif not path.is_file():
            raise DataError(f"{path}: no such file or folder; check the path")
        elif path.suffix.lower() in JSONL_SUFFIXES:
            jsonl.append(path)
        elif path.suffix.lower() in (NOTEBOOK_SUFFIX, *TEXT_SUFFIXES):
            files.append(path)
            roots.append(path.resolve().parent)
        else:
            raise DataError(
                f"{path}: unsupported item file; give .ipynb, .jsonl, .txt, .md files or a folder"
            )
    root = Path(os.path.commonpath(roots)) if roots else Path.cwd()

    loaded: list[tuple[Item, str]] = []
    seen_files: set[Path] = set()
    for path in files:
        resolved = path.resolve()
        if resolved in seen_files:
            continue
        seen_files.add(resolved)
        text = read_text(path)
        item_id = resolved.relative_to(root).as_posix()
        if path.suffix.lower() == NOTEBOOK_SUFFIX:
            _check_notebook(text, str(path))
            item = Item(id=item_id, kind="notebook", output=text, path=str(path))
        else:
            item = Item(id=item_id, kind="text", output=text, path=str(path))
        loaded.append((item, str(path)))
    for path in jsonl:
        if path.resolve() not in seen_files:
            seen_files.add(path.resolve())
            loaded.extend(_read_jsonl(path))
    loaded.extend(traced)

    sources: dict[str, str] = {}
    for item, where in loaded:
        if item.id in sources:
            raise DataError(
                f"duplicate item id {item.id!r} in {sources[item.id]} and {where}; "
                "give every item a unique id"
            )
        sources[item.id] = where
    return [item for item, _ in loaded]


def save_items_jsonl(path: str | Path, items: Sequence[Item]) -> None:
    """Write items one JSON object a line; ``load_items`` reads the file back unchanged."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item.model_dump(mode="json"), ensure_ascii=False) + "\n")


class ItemIndex:
    """Resolves the item references found in label files, fast for many labels.

    >>> nb = Item(id="nb/a.ipynb", output="{}", kind="notebook", path="x/nb/a.ipynb")
    >>> index = ItemIndex([nb])
    >>> index.resolve("a").id
    'nb/a.ipynb'
    """

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = list(items)
        self._by_id = {item.id: item for item in self.items}
        self._by_path: dict[str, Item] = {}
        self._by_stem: dict[str, list[Item]] = {}
        for item in self.items:
            if item.path:
                self._by_path[os.path.normpath(os.path.abspath(item.path))] = item
                self._by_stem.setdefault(Path(item.path).stem, []).append(item)

    def resolve(self, ref: str) -> Item:
        """The item ``ref`` names: by id, by path (as given or from the working directory),
        by a path ending in the id, or by a unique file stem; DataError otherwise."""
        if ref in self._by_id:
            return self._by_id[ref]
        by_path = self._by_path.get(os.path.normpath(os.path.abspath(ref)))
        if by_path is not None:
            return by_path
        posix = ref.replace("\\", "/")
        tails = [i for i in self.items if posix.endswith("/" + i.id)]
        if len(tails) == 1:
            return tails[0]
        stems = self._by_stem.get(Path(posix).stem, []) if "/" not in posix else []
        if len(stems) == 1:
            return stems[0]
        if len(stems) > 1 or len(tails) > 1:
            names = ", ".join(i.id for i in (stems or tails)[:3])
            raise DataError(f"item {ref!r} is ambiguous ({names}); use the full item id")
        example = ", ".join(repr(i.id) for i in self.items[:3]) or "none loaded"
        raise DataError(f"unknown item {ref!r}; use an item id such as {example}")


def resolve_item_ref(ref: str, items: Sequence[Item]) -> Item:
    """The item a label's ``item`` field names (id, path or unique stem).

    For many labels build one ``ItemIndex`` and call ``resolve`` instead.

    >>> resolve_item_ref("a1", [Item(id="a1", output="x")]).id
    'a1'
    """
    return ItemIndex(items).resolve(ref)
