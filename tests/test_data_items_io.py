"""Loading items from notebooks, folders, JSONL and text files; resolving references."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from judgealign.data.items_io import ItemIndex, load_items, resolve_item_ref, save_items_jsonl
from judgealign.errors import DataError

NB = json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []})


def make_tree(root: Path) -> None:
    (root / "sub" / ".ipynb_checkpoints").mkdir(parents=True)
    (root / "a.ipynb").write_text(NB)
    (root / "sub" / "b.ipynb").write_text(NB)
    (root / "sub" / ".ipynb_checkpoints" / "b-checkpoint.ipynb").write_text(NB)


def test_folder_loads_notebooks_recursively_sorted_skipping_checkpoints(tmp_path: Path) -> None:
    make_tree(tmp_path)
    items = load_items([tmp_path])
    assert [i.id for i in items] == ["a.ipynb", "sub/b.ipynb"]
    assert all(i.kind == "notebook" and i.output == NB for i in items)


def test_ids_are_relative_to_the_common_root(tmp_path: Path) -> None:
    make_tree(tmp_path)
    items = load_items([tmp_path / "a.ipynb", tmp_path / "sub" / "b.ipynb"])
    assert [i.id for i in items] == ["a.ipynb", "sub/b.ipynb"]
    assert [i.id for i in load_items([tmp_path / "sub" / "b.ipynb"])] == ["b.ipynb"]


def test_jsonl_and_text_files(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "output": "Summary one.", "inputs": {"dialogue": ["hi", "hello"]}, "group": 7},
        {"id": "x2", "output": "Summary two.", "metadata": {"system": "m1"}},
    ]
    (tmp_path / "items.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    (tmp_path / "note.md").write_text("# Some text")
    items = load_items([tmp_path / "items.jsonl", tmp_path / "note.md"])
    assert [i.id for i in items] == ["note.md", "1", "x2"]
    first = items[1]
    assert first.inputs == {"dialogue": "hi\nhello"} and first.group == "7"
    assert items[2].metadata == {"system": "m1"}
    assert items[0].kind == "text" and items[0].output == "# Some text"


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    make_tree(tmp_path)
    items = load_items([tmp_path])
    out = tmp_path / "out" / "items.jsonl"
    save_items_jsonl(out, items)
    assert load_items([out]) == items


def test_duplicate_ids_name_both_sources(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"id": "same", "output": "1"}\n')
    (tmp_path / "b.jsonl").write_text('\n{"id": "same", "output": "2"}\n')
    with pytest.raises(
        DataError, match=r"duplicate item id 'same' in .*a\.jsonl:1 and .*b\.jsonl:2"
    ):
        load_items([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.ipynb", "{oops", r"bad\.ipynb: not valid JSON"),
        ("bad.ipynb", '{"cells": []}', "not a Jupyter notebook"),
        ("bad.jsonl", '{"id": "a"}\n', r"bad\.jsonl:1: missing field 'output'"),
        ("bad.jsonl", "not json\n", r"bad\.jsonl:1: not valid JSON"),
        ("bad.jsonl", '{"id": "a", "output": "x", "inputs": [1]}\n', "'inputs' must be"),
        ("bad.csv", "a,b\n", "unsupported item file"),
    ],
)
def test_bad_item_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        load_items([tmp_path / name])


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        load_items([tmp_path / "nope.ipynb"])
    with pytest.raises(DataError, match=r"no \.ipynb files"):
        load_items([tmp_path])


def test_resolve_item_ref_by_id_path_and_stem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path)
    items = load_items([tmp_path])
    index = ItemIndex(items)
    assert index.resolve("sub/b.ipynb").id == "sub/b.ipynb"
    assert index.resolve(str(tmp_path / "sub" / "b.ipynb")).id == "sub/b.ipynb"
    assert index.resolve("b").id == "sub/b.ipynb"
    assert index.resolve("project/notebooks/sub/b.ipynb").id == "sub/b.ipynb"
    monkeypatch.chdir(tmp_path / "sub")
    assert resolve_item_ref(os.path.join(".", "b.ipynb"), items).id == "sub/b.ipynb"
    with pytest.raises(DataError, match=r"unknown item 'zzz'; use an item id such as 'a\.ipynb'"):
        index.resolve("zzz")
