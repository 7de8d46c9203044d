"""Checks on a distilled guideline's text: normalization, format-template and item leaks,
and verbatim copies of the labels it came from."""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_GUIDELINE_CHARS = 400
# A guideline sharing this many consecutive words with a source label is a copy, not a rule.
COPY_NGRAM_WORDS = 8
_WORD = re.compile(r"\w+")


def clean_text(text: str, forbidden: Sequence[str] = ()) -> str | None:
    """Normalize a guideline: one or two sentences; None if it names a forbidden token."""
    text = " ".join(text.split()).strip().strip('"').strip()
    if not text:
        return None
    sentences = re.split(r"(?<=[.!?])\s+", text)
    text = " ".join(sentences[:2])
    if len(text) > MAX_GUIDELINE_CHARS:
        text = text[: MAX_GUIDELINE_CHARS - 3].rsplit(" ", 1)[0] + "..."
    lowered = text.lower()
    if "<observable pattern" in lowered or re.search(r"score <n>", lowered):
        return None  # the prompt's format template copied back, not a guideline
    for token in forbidden:
        if len(token) >= 3 and re.search(rf"(?<![\w]){re.escape(token.lower())}(?![\w])", lowered):
            return None  # item-specific: it would not generalize and may leak the item
    return text


def word_ngrams(texts: Sequence[str], n: int = COPY_NGRAM_WORDS) -> set[tuple[str, ...]]:
    """Every run of ``n`` consecutive (lower-cased) words in ``texts``."""
    grams: set[tuple[str, ...]] = set()
    for text in texts:
        words = _WORD.findall(text.lower())
        grams.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams


def copies_source(text: str, source_grams: set[tuple[str, ...]], n: int = COPY_NGRAM_WORDS) -> bool:
    """True when ``text`` repeats ``n`` consecutive words of the sources behind
    ``source_grams`` (``word_ngrams(sources, n)``, built once per reflection batch).

    Small reflection models paste an expert's justification (or the item itself) back as a
    "guideline"; such a rule describes one item, so it does not generalize and it leaks that
    item's verdict into every prompt.

    >>> src = word_ngrams(["B simply does not use as clear language as A, overall."], n=6)
    >>> copies_source("Answer B does not use as clear language as A.", src, n=6)
    True
    >>> copies_source("Prefer the clearer answer.", word_ngrams(["B is less clear."], n=6), n=6)
    False
    """
    return not word_ngrams([text], n).isdisjoint(source_grams)
