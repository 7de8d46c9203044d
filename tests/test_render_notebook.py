"""Rendering notebooks: structure, output handling, budgets and malformed files."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from judgealign.errors import DataError
from judgealign.render.notebook import notebook_outline, render_notebook
from judgealign.render.tokens import estimate_tokens

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PNG = "iVBORw0KGgo" + "A" * 20000


def code(source: str, *outputs: dict[str, Any]) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "source": source,
        "metadata": {},
        "execution_count": 1,
        "outputs": list(outputs),
    }


def markdown(source: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "source": source, "metadata": {}}


def notebook(*cells: dict[str, Any]) -> dict[str, Any]:
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": list(cells)}


def stream(text: str, name: str = "stdout") -> dict[str, Any]:
    return {"output_type": "stream", "name": name, "text": text}


def test_cells_are_numbered_with_kind_and_outputs() -> None:
    nb = notebook(
        markdown("# Title"),
        code("import pandas as pd"),
        code("print('hi')", stream("hi\n")),
        code(
            "1 + 1",
            {
                "output_type": "execute_result",
                "data": {"text/plain": "2"},
                "metadata": {},
                "execution_count": 3,
            },
        ),
    )
    text = render_notebook(nb)
    assert text.startswith("[notebook | 4 cells: 1 markdown, 3 code]")
    for expected in (
        "[cell 1 | markdown]\n# Title",
        "[cell 2 | code]\nimport pandas as pd",
        "[cell 3 | code]\nprint('hi')\n[output: stdout]\nhi",
        "[cell 4 | code]\n1 + 1\n[output: result]\n2",
    ):
        assert expected in text


def test_images_are_replaced_never_base64() -> None:
    nb = notebook(
        code(
            "plt.plot(x)",
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"image/png": PNG, "text/plain": "<Figure size 640x480>"},
            },
        ),
        markdown(f"inline ![x](data:image/png;base64,{PNG})"),
    )
    text = render_notebook(nb)
    assert "[image: image/png]" in text
    assert "iVBORw0KGgo" not in text
    assert "AAAAAAAA" not in text


def test_ansi_codes_are_stripped_from_errors_and_streams() -> None:
    error = {
        "output_type": "error",
        "ename": "ValueError",
        "evalue": "bad \x1b[0;31mvalue\x1b[0m",
        "traceback": ["\x1b[0;31mTraceback\x1b[0m"]
        + [f"  frame {i}" for i in range(20)]
        + ["\x1b[0;31mValueError\x1b[0m: bad value"],
    }
    nb = notebook(code("fit()", stream("\x1b[1mbold\x1b[0m\n"), error))
    text = render_notebook(nb)
    assert "\x1b" not in text
    assert "[error: ValueError: bad value]" in text
    assert "frame 19" in text  # the traceback's tail is kept
    assert "frame 2\n" not in text  # ... and its head dropped
    assert "bold" in text


def test_html_uses_plain_alternative_or_short_text() -> None:
    with_plain = {
        "output_type": "execute_result",
        "metadata": {},
        "execution_count": 1,
        "data": {"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "   a\n0  1"},
    }
    html_only = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"text/html": "<div><b>Accuracy</b> &amp; 0.93" + "<p>x</p>" * 2000},
    }
    text = render_notebook(notebook(code("df", with_plain), code("show()", html_only)))
    assert "   a\n0  1" in text
    assert "<table>" not in text
    assert "[output: html, shown as text]" in text
    assert "Accuracy & 0.93" in text
    assert len(text) < 2000


def test_consecutive_streams_merge_and_carriage_returns_replay() -> None:
    nb = notebook(
        code("train()", stream("epoch 1\n"), stream("epoch 2\n"), stream("10%\r50%\r100%\n"))
    )
    text = render_notebook(nb)
    assert text.count("[output: stdout]") == 1
    assert "epoch 1\nepoch 2\n100%" in text
    assert "50%" not in text


def test_long_output_is_capped_even_within_budget() -> None:
    nb = notebook(code("loop()", stream("".join(f"step {i}\n" for i in range(5000)))))
    text = render_notebook(nb, budget_tokens=100_000)
    assert "step 0" in text and "step 4999" in text
    assert "characters trimmed" in text
    assert len(text) < 3000


def test_budget_respected_and_structure_kept_under_heavy_truncation() -> None:
    cells = []
    for i in range(60):
        cells.append(markdown(f"## Section {i}\n" + "explanation " * 200))
        cells.append(
            code(
                f"result_{i} = compute({i})\n" + "x = x + 1\n" * 300,
                stream("".join(f"{i}: loss {j}\n" for j in range(300))),
            )
        )
    nb = notebook(*cells)
    text = render_notebook(nb, budget_tokens=6000)
    assert estimate_tokens(text) <= 6000
    for number in range(1, 121):  # every cell's header survives ...
        assert f"[cell {number} |" in text
    assert "result_59 = compute(59)" in text  # ... with the start of its source
    assert "[outputs trimmed: stdout]" in text


def test_extreme_budget_still_fits_and_notes_omitted_cells() -> None:
    nb = notebook(*[code(f"value_{i} = {i}\n" + "y += 1\n" * 50) for i in range(400)])
    text = render_notebook(nb, budget_tokens=300)
    assert estimate_tokens(text) <= 300
    assert "[cell 1 | code] value_0 = 0" in text
    assert "[cell 400 | code] value_399 = 399" in text
    assert "omitted ...]" in text


def test_nbformat_v3_is_converted() -> None:
    nb = {
        "nbformat": 3,
        "nbformat_minor": 0,
        "metadata": {"name": "old"},
        "worksheets": [
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "input": "x = 42",
                        "language": "python",
                        "outputs": [
                            {
                                "output_type": "pyout",
                                "text": "42",
                                "prompt_number": 1,
                                "metadata": {},
                            }
                        ],
                        "prompt_number": 1,
                        "metadata": {},
                        "collapsed": False,
                    }
                ],
                "metadata": {},
            }
        ],
    }
    text = render_notebook(json.dumps(nb))
    assert "[cell 1 | code]\nx = 42" in text
    assert "42" in text.split("x = 42", 1)[1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"cells": []}', "not a Jupyter notebook"),
        ("[1, 2]", "not a Jupyter notebook"),
        ('{"nbformat": 4, "cells": "oops"}', "no 'cells' list"),
        ('{"nbformat": 9, "cells": []}', "unsupported nbformat 9"),
        ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [3]}', "cell 1"),
    ],
)
def test_malformed_notebooks_raise_data_error_naming_the_file(content: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        render_notebook(content, source="runs/broken.ipynb")
    assert str(info.value).startswith("runs/broken.ipynb:")


def test_outline_lists_cells() -> None:
    outline = notebook_outline(notebook(markdown("# A\nmore"), code("x = 1", stream("1"))))
    assert outline.splitlines() == ["[cell 1 | markdown] # A", "[cell 2 | code] x = 1 (1 outputs)"]


def test_all_shared_notebooks_render_within_budget() -> None:
    folder = SHARED / "data" / "notebooks"
    if not folder.is_dir():
        pytest.skip(f"shared notebooks not found at {folder}")
    paths = sorted(folder.rglob("*.ipynb"))
    assert len(paths) >= 100
    started = time.perf_counter()
    for path in paths:
        text = render_notebook(
            path.read_text(encoding="utf-8"), budget_tokens=6000, source=str(path)
        )
        assert estimate_tokens(text) <= 6000, path
        assert "[cell 1 |" in text or "[cell 2 |" in text, path
        assert "base64" not in text, path
    elapsed = time.perf_counter() - started
    assert elapsed < 30, f"rendering {len(paths)} notebooks took {elapsed:.1f}s"


def test_a_notebook_item_shows_its_task_first_and_stays_within_budget() -> None:
    from judgealign.data.item import Item
    from judgealign.demo import load_demo
    from judgealign.render import NOTEBOOK_HEADING, render_item
    from judgealign.render.tokens import estimate_tokens

    items, _ = load_demo(dimensions=["model_use"])
    item = items[0]
    text = render_item(item, budget_tokens=1500)
    assert text.startswith("## Input: task\n" + item.inputs["task"])
    assert f"\n\n{NOTEBOOK_HEADING}\n[notebook |" in text
    assert estimate_tokens(text) <= 1500
    # A task longer than its share of the budget is cut, never the notebook's whole room.
    long_task = item.model_copy(update={"inputs": {"task": "Predict delays. " * 2000}})
    text = render_item(long_task, budget_tokens=1500)
    assert estimate_tokens(text) <= 1500
    assert "[cell 1 | markdown]" in text
    # Without inputs a notebook renders exactly as before.
    bare = Item(id="nb", kind="notebook", output=item.output)
    assert render_item(bare, budget_tokens=1500).startswith("[notebook |")
