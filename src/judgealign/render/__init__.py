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
from judgealign.render.text import render_text
from judgealign.render.tokens import clip_chars, estimate_tokens, truncate_to_tokens

DEFAULT_BUDGET_TOKENS = 6000

__all__ = [
    "DEFAULT_BUDGET_TOKENS",
    "clip_chars",
    "estimate_tokens",
    "notebook_outline",
    "parse_notebook",
    "render_item",
    "render_notebook",
    "render_text",
    "truncate_to_tokens",
]


def render_item(item: Item, *, budget_tokens: int = DEFAULT_BUDGET_TOKENS) -> str:
    """Render ``item`` for a judge: notebooks as numbered cells, text as inputs + output."""
    if item.kind == "notebook":
        return render_notebook(
            item.output, budget_tokens=budget_tokens, source=item.path or item.id
        )
    return render_text(item.inputs, item.output, budget_tokens=budget_tokens)
