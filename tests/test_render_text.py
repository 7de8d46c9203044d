"""Rendering text items: inputs as context, then the output to judge."""

from __future__ import annotations

from judgealign.data.item import Item
from judgealign.render import render_item
from judgealign.render.text import render_text
from judgealign.render.tokens import estimate_tokens


def test_headings_and_order() -> None:
    text = render_text({"article": "Source.", "question": "Why?"}, "Answer.")
    assert text.index("## Input: article") < text.index("## Input: question")
    assert text.index("## Input: question") < text.index("## Output to judge")
    assert text.rstrip().endswith("Answer.")


def test_inputs_are_truncated_before_the_output() -> None:
    output = "The summary. " * 40
    text = render_text({"article": "long article text " * 5000}, output, budget_tokens=600)
    assert estimate_tokens(text) <= 600
    assert output.strip() in text
    assert "characters trimmed" in text.split("## Output to judge")[0]


def test_output_is_truncated_when_it_alone_is_too_long() -> None:
    text = render_text({"q": "short"}, "word " * 20000, budget_tokens=300)
    assert estimate_tokens(text) <= 300
    assert "## Output to judge" in text
    assert "## Input: q" in text


def test_render_item_dispatches_on_kind() -> None:
    nb = '{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [' + (
        '{"cell_type": "code", "source": "x = 1", "metadata": {}, "outputs": [],'
        ' "execution_count": 1}]}'
    )
    rendered = render_item(Item(id="n.ipynb", kind="notebook", output=nb), budget_tokens=200)
    assert "[cell 1 | code]" in rendered
    rendered = render_item(Item(id="t", output="hello", inputs={"q": "hi"}), budget_tokens=200)
    assert "## Output to judge\nhello" in rendered
