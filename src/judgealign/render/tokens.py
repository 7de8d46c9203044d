"""Token estimates and truncation to a token budget, without a tokenizer.

A real BPE tokenizer (tiktoken) downloads its vocabulary at run time, which this project may
not do, so budgets use a deliberately pessimistic estimate: prompts then never exceed a
model's context, at the cost of sometimes trimming a little more than needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

# BPE vocabularies (cl100k, o200k, Llama) average ~4 bytes per token on English prose and
# ~3.6 on source code; 3.2 leaves a safety margin for punctuation-heavy code and logs.
BYTES_PER_TOKEN = 3.2
# Digits tokenize badly (numbers split into groups of at most three digits, with the dots and
# separators as their own tokens), and notebook outputs are full of numeric tables.
DIGITS_PER_TOKEN = 1.6
_DIGITS = str.maketrans("", "", "0123456789")

DEFAULT_MARKER = "\n[... {n} characters trimmed ...]\n"


def estimate_tokens(text: str) -> int:
    """A fast, conservative estimate of the number of tokens ``text`` costs a typical LLM.

    Counts UTF-8 bytes, so non-Latin scripts (several bytes a character) cost more.

    >>> estimate_tokens("")
    0
    >>> estimate_tokens("def f(x):\\n    return x + 1\\n") <= 12
    True
    """
    if not text:
        return 0
    n_bytes = len(text.encode("utf-8"))
    n_digits = len(text) - len(text.translate(_DIGITS))
    return math.ceil((n_bytes - n_digits) / BYTES_PER_TOKEN + n_digits / DIGITS_PER_TOKEN)


def clip_chars(
    text: str, max_chars: int, *, head_fraction: float = 0.6, marker: str = DEFAULT_MARKER
) -> str:
    """Keep about ``max_chars`` characters of ``text``: its head and tail around ``marker``.

    ``marker`` may hold ``{n}``, the number of characters removed. Cuts move back to a line
    (or word) boundary when one is near; a small allowance keeps the head only, and a text
    that would lose less than the marker's own length is kept whole.

    >>> clip_chars("abcdefghij", 4, marker="|{n}|")
    'abc|6|j'
    >>> clip_chars("abcdefghij", 8, marker="|{n}|")
    'abcdefghij'
    """
    if len(text) <= max_chars or len(text) - max_chars <= len(marker):
        return text
    keep = max(0, max_chars)
    head = math.ceil(keep * head_fraction)
    tail = keep - head
    if tail < 40 and keep >= 40:
        head, tail = keep, 0
    if head >= 40:
        head = _boundary_before(text, head)
    start = len(text) - tail
    if tail >= 40:
        start = _boundary_after(text, start)
    return text[:head] + marker.format(n=start - head) + text[start:]


def _boundary_before(text: str, pos: int) -> int:
    """A cut position at or before ``pos``: after a newline or space in its last quarter."""
    floor = pos - pos // 4
    for sep in ("\n", " "):
        found = text.rfind(sep, floor, pos)
        if found >= 0:
            return found + 1
    return pos


def _boundary_after(text: str, pos: int) -> int:
    """A cut position at or after ``pos``: after a newline in the next few characters."""
    found = text.find("\n", pos, pos + 40)
    return found + 1 if found >= 0 else pos


def largest_fitting(
    render: Callable[[int], str], lo: int, hi: int, budget_tokens: int
) -> tuple[int, str] | None:
    """The largest ``cap`` in ``lo..hi`` whose ``render(cap)`` fits the budget, with its text.

    ``render`` must grow (weakly) with ``cap``. Returns None when even ``render(lo)`` is too big.

    >>> largest_fitting(lambda c: "x" * c, 0, 100, 10)[0]
    32
    """
    text = render(lo)
    if estimate_tokens(text) > budget_tokens:
        return None
    best = (lo, text)
    low, high = lo + 1, hi
    while low <= high:
        mid = (low + high) // 2
        text = render(mid)
        if estimate_tokens(text) <= budget_tokens:
            best = (mid, text)
            low = mid + 1
        else:
            high = mid - 1
    return best


def truncate_to_tokens(
    text: str, budget: int, *, marker: str = DEFAULT_MARKER, head_fraction: float = 0.6
) -> str:
    """Shorten ``text`` to at most ``budget`` estimated tokens, keeping its head and tail.

    The removed middle is replaced by ``marker`` (``{n}`` = characters trimmed).

    >>> out = truncate_to_tokens("word " * 1000, 50)
    >>> estimate_tokens(out) <= 50 and "characters trimmed" in out
    True
    """
    if estimate_tokens(text) <= budget:
        return text
    if budget <= 0:
        return ""
    found = largest_fitting(
        lambda cap: clip_chars(text, cap, head_fraction=head_fraction, marker=marker),
        0,
        # No character costs less than 1/BYTES_PER_TOKEN tokens, which bounds the search.
        min(len(text), math.ceil(budget * BYTES_PER_TOKEN)),
        budget,
    )
    if found is not None:
        return found[1]
    # Not even the marker fits: a bare head is the best that can be done (a character costs
    # at most 4 bytes, i.e. 4/BYTES_PER_TOKEN tokens).
    head = text[: math.floor(budget * BYTES_PER_TOKEN / 4)]
    while head and estimate_tokens(head) > budget:
        head = head[:-1]
    return head
