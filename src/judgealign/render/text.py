"""Render a text item (its inputs as context, then the output to judge) within a budget."""

from __future__ import annotations

from collections.abc import Mapping

from judgealign.render.tokens import (
    clip_chars,
    estimate_tokens,
    largest_fitting,
    truncate_to_tokens,
)

# Inputs keep at least this much before the judged output itself is cut.
INPUT_MIN_CHARS = 400
OUTPUT_MIN_CHARS = 400
_MARK = "\n[... {n} characters trimmed ...]\n"
OUTPUT_HEADING = "## Output to judge"


def render_inputs(inputs: Mapping[str, str], *, cap_chars: int | None = None) -> str:
    """Each input under a ``## Input: <name>`` heading, cut to ``cap_chars`` around a marker.

    >>> render_inputs({"task": "Predict churn."})
    '## Input: task\\nPredict churn.\\n'
    """
    parts: list[str] = []
    for name, value in inputs.items():
        text = value if cap_chars is None else clip_chars(value, cap_chars, marker=_MARK)
        parts.append(f"## Input: {name}\n{text.strip()}\n")
    return "\n".join(parts)


def _render(
    inputs: Mapping[str, str], output: str, *, input_cap: int | None, output_cap: int | None
) -> str:
    parts: list[str] = []
    for name, value in inputs.items():
        text = value if input_cap is None else clip_chars(value, input_cap, marker=_MARK)
        parts.append(f"## Input: {name}\n{text.strip()}\n")
    body = output if output_cap is None else clip_chars(output, output_cap, marker=_MARK)
    parts.append(f"{OUTPUT_HEADING}\n{body.strip()}")
    return "\n".join(parts)


def render_text(inputs: Mapping[str, str], output: str, *, budget_tokens: int = 6000) -> str:
    """Inputs under ``## Input: <name>`` headings, then the output under ``## Output to judge``.

    Over budget, long inputs are cut first (they are context), down to a floor; then the output;
    then inputs below the floor. Every cut keeps head and tail around a marker.

    >>> print(render_text({"article": "A cat sat on a mat."}, "The cat sat."))
    ## Input: article
    A cat sat on a mat.
    <BLANKLINE>
    ## Output to judge
    The cat sat.
    """
    full = _render(inputs, output, input_cap=None, output_cap=None)
    if estimate_tokens(full) <= budget_tokens:
        return full
    longest_input = max((len(v) for v in inputs.values()), default=0)
    attempts = (
        (
            lambda cap: _render(inputs, output, input_cap=cap, output_cap=None),
            INPUT_MIN_CHARS,
            longest_input,
        ),
        (
            lambda cap: _render(inputs, output, input_cap=INPUT_MIN_CHARS, output_cap=cap),
            OUTPUT_MIN_CHARS,
            len(output),
        ),
        (
            lambda cap: _render(inputs, output, input_cap=cap, output_cap=OUTPUT_MIN_CHARS),
            0,
            INPUT_MIN_CHARS,
        ),
    )
    for render, lo, hi in attempts:
        found = largest_fitting(render, min(lo, hi), hi, budget_tokens)
        if found is not None:
            return found[1]
    return truncate_to_tokens(_render(inputs, output, input_cap=0, output_cap=0), budget_tokens)
