"""Source-level editing of code cells: masking IPython lines, splicing, removing statements."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from judgealign.stress.code import CellCode, Edit, apply_edits, mask_magics, used_names
from judgealign.stress.notebook import Notebook, changes_between
from judgealign.stress.probe import NotApplicable
from judgealign.stress.rewrite import remove_statements


def notebook(*cells: str | tuple[str, str]) -> Notebook:
    raw = []
    for c in cells:
        kind, text = c if isinstance(c, tuple) else ("code", c)
        cell = {"cell_type": kind, "metadata": {}, "source": text}
        if kind == "code":
            cell.update(outputs=[{"output_type": "stream", "name": "stdout", "text": "x\n"}])
            cell["execution_count"] = len(raw) + 1
        raw.append(cell)
    return Notebook({"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": raw})


def test_magics_are_masked_only_where_a_logical_line_starts() -> None:
    text = "%matplotlib inline\n!pip install a \\\n    b\nx = ('%d'\n     % 3)\ny = !ls\nz?"
    masked, lines = mask_magics(text)
    assert lines == {1, 2, 3, 6, 7}
    assert ast.parse(masked)
    assert masked.split("\n")[4] == "     % 3)"  # the modulo operator, not a magic


def test_cell_magics_running_python_parse_others_stay_opaque() -> None:
    assert CellCode.parse("%%time\nx = 1").ok
    bash = CellCode.parse("%%bash\nls -l")
    assert not bash.ok and "cell magic" in bash.error


def test_overlapping_edits_are_refused() -> None:
    with pytest.raises(ValueError):
        apply_edits("abcdef", [Edit(0, 3, "x"), Edit(2, 4, "y")])
    assert apply_edits("abc", [Edit(1, 1, "X"), Edit(1, 2, "")]) == "aXc"


def test_offsets_count_characters_not_utf8_bytes() -> None:
    code = CellCode.parse('s = "héllo"; t = s')
    tree = code.tree
    assert tree is not None
    second = tree.body[1]
    assert code.segment(second) == "t = s"


def test_used_names_respect_function_and_comprehension_scopes() -> None:
    tree = ast.parse(
        "def f(df, k=K):\n    n = 2\n    return df + n + g\nz = [v for v in w if v > t]"
    )
    assert used_names(tree) == {"K", "g", "w", "t"}


def test_removal_takes_introducing_comments_and_strands_nothing() -> None:
    nb = notebook(
        "import pandas as pd\n# how much is missing\nmissing = df.isna().sum()\nx = 1",
        "print(missing)\n# keep\ny = x + 1",
    )
    tree = nb.code(0).tree
    assert tree is not None
    removed = remove_statements(nb, [(0, tree.body[1])])
    assert removed == 2  # the check, and the print that read its result
    assert nb.source(0) == "import pandas as pd\nx = 1"
    assert nb.source(1) == "# keep\ny = x + 1"
    assert nb.cells[1]["outputs"] == []  # its printed output no longer matches its code


def test_removal_refuses_to_strand_protected_code() -> None:
    nb = notebook("cv = make_cv()", "model.fit(X, y, cv=cv)")
    tree = nb.code(0).tree
    assert tree is not None
    with pytest.raises(NotApplicable, match="protected"):
        remove_statements(nb, [(0, tree.body[0])], protect=lambda s: "fit" in ast.unparse(s.node))


def test_removal_cuts_one_statement_from_a_semicolon_line() -> None:
    nb = notebook("np.random.seed(42); tf.random.set_seed(42); x = 1")
    tree = nb.code(0).tree
    assert tree is not None
    remove_statements(nb, [(0, tree.body[0]), (0, tree.body[1])])
    assert nb.source(0) == "x = 1"


def test_unwrapping_keeps_multiline_strings_or_refuses() -> None:
    text = 'with mlflow.start_run():\n    doc = """\n  kept as is\n"""\n    model.fit(X, y)\n'
    nb = notebook(text)
    tree = nb.code(0).tree
    assert tree is not None
    remove_statements(nb, [], unwrap=[(0, tree.body[0])])
    assert nb.source(0) == 'doc = """\n  kept as is\n"""\nmodel.fit(X, y)\n'
    # With another edit inside the block the string's lines could not be found again: the
    # cell is refused rather than mangled.
    nb = notebook(text.replace("    model.fit", "    print(run.info)\n    model.fit"))
    tree = nb.code(0).tree
    assert tree is not None
    with_stmt = tree.body[0]
    assert isinstance(with_stmt, ast.With)
    with pytest.raises(NotApplicable, match="multi-line string"):
        remove_statements(nb, [(0, with_stmt.body[1])], unwrap=[(0, with_stmt)])


def test_unwrapping_a_with_block_without_strings() -> None:
    nb = notebook(
        "with mlflow.start_run():\n    mlflow.log_param('k', 2)\n    model.fit(X, y)\nz = 1"
    )
    tree = nb.code(0).tree
    assert tree is not None
    with_stmt = tree.body[0]
    assert isinstance(with_stmt, ast.With)
    remove_statements(nb, [(0, with_stmt.body[0])], unwrap=[(0, with_stmt)])
    assert nb.source(0) == "model.fit(X, y)\nz = 1"


def test_an_emptied_block_keeps_a_pass() -> None:
    nb = notebook("for c in cols:\n    print(df[c].isna().sum())\nelse:\n    done = True")
    tree = nb.code(0).tree
    assert tree is not None
    loop = tree.body[0]
    assert isinstance(loop, ast.For)
    remove_statements(nb, [(0, loop.body[0])])
    assert nb.source(0) == "for c in cols:\n    pass\nelse:\n    done = True"
    assert ast.parse(nb.source(0))


def test_changes_record_edits_moves_inserts_and_deletes() -> None:
    nb = notebook("a = 1", ("markdown", "# Title"), "b = 2", "c = 3")
    nb.set_source(0, "a = 10")
    nb.delete(1)
    nb.reorder([0, 2, 1])
    nb.insert(0, "markdown", "note")
    changes = {(c.action, c.cell, c.new_cell) for c in changes_between(nb.original, nb)}
    assert changes == {
        ("inserted", None, 0),
        ("edited", 0, 1),
        ("moved", 3, 2),
        ("deleted", 1, None),
    }


def test_the_original_mapping_is_never_written() -> None:
    cell = {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []}
    raw = {"nbformat": 4, "nbformat_minor": 4, "metadata": {}, "cells": [dict(cell)]}
    nb = Notebook(raw)
    nb.set_source(0, "x = 2")
    nb.insert(0, "markdown", "hi")
    assert raw["cells"] == [cell]
    assert np.array_equal(nb.origin, [None, 0])
