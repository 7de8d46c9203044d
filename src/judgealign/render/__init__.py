"""Turning items into judge-ready text within a token budget.

>>> from judgealign.data.item import Item
>>> item = Item(id="a", output="Hi.", inputs={"question": "Greet me"})
>>> print(render_item(item, budget_tokens=100))
## Input: question
Greet me
<BLANKLINE>
## Output to judge
Hi.
"""

from __future__ import annotations

from judgealign.data.item import Item
from judgealign.render.notebook import notebook_outline, parse_notebook, render_notebook
from judgealign.render.text import INPUT_MIN_CHARS, render_inputs, render_text
from judgealign.render.tokens import clip_chars, estimate_tokens, truncate_to_tokens

DEFAULT_BUDGET_TOKENS = 6000

__all__ = [
    "DEFAULT_BUDGET_TOKENS",
    "NOTEBOOK_HEADING",
    "clip_chars",
    "estimate_tokens",
    "notebook_outline",
    "parse_notebook",
    "render_item",
    "render_notebook",
    "render_text",
    "truncate_to_tokens",
]


# A notebook's inputs (the task it was written for) take at most this share of its budget.
NOTEBOOK_INPUT_SHARE = 0.25
NOTEBOOK_HEADING = "## Notebook to judge"


def render_item(item: Item, *, budget_tokens: int = DEFAULT_BUDGET_TOKENS) -> str:
    """Render ``item`` for a judge: its inputs as context, then the output to judge (a
    notebook as numbered cells).

    A notebook's inputs (the task it was asked to solve) come first: several rubric rules
    depend on what the task asks or states ("no missing values", "track it in MLflow").

    >>> nb = '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}'
    >>> text = render_item(Item(id="n", kind="notebook", output=nb, inputs={"task": "Fit."}))
    >>> text.splitlines()[:3]
    ['## Input: task', 'Fit.', '']
    """
    if item.kind != "notebook":
        return render_text(item.inputs, item.output, budget_tokens=budget_tokens)
    source = item.path or item.id
    if not item.inputs:
        return render_notebook(item.output, budget_tokens=budget_tokens, source=source)
    share = int(budget_tokens * NOTEBOOK_INPUT_SHARE)
    head = render_inputs(item.inputs, cap_chars=max(INPUT_MIN_CHARS, share * 4))
    head = truncate_to_tokens(head, max(share, 1))
    rest = max(budget_tokens - estimate_tokens(head) - estimate_tokens(NOTEBOOK_HEADING), 1)
    body = render_notebook(item.output, budget_tokens=rest, source=source)
    return f"{head}\n{NOTEBOOK_HEADING}\n{body}"
