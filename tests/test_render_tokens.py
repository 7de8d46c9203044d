"""Token estimates and truncation."""

from __future__ import annotations

from judgealign.render.tokens import clip_chars, estimate_tokens, truncate_to_tokens


def test_estimate_is_conservative_for_english_and_code() -> None:
    prose = "The quick brown fox jumps over the lazy dog. " * 100
    # Real BPE tokenizers need ~10 tokens per sentence here; the estimate must not be lower.
    assert estimate_tokens(prose) >= 1000
    assert estimate_tokens("") == 0
    assert estimate_tokens("0123456789") > estimate_tokens("abcdefghij")
    assert estimate_tokens("日本語") >= 3


def test_truncate_keeps_head_and_tail_with_marker() -> None:
    text = "HEAD " + "middle " * 2000 + " TAIL"
    out = truncate_to_tokens(text, 100)
    assert estimate_tokens(out) <= 100
    assert out.startswith("HEAD")
    assert out.endswith("TAIL")
    assert "characters trimmed" in out


def test_truncate_returns_short_text_unchanged_and_handles_tiny_budgets() -> None:
    assert truncate_to_tokens("short", 100) == "short"
    assert truncate_to_tokens("x" * 1000, 0) == ""
    tiny = truncate_to_tokens("y" * 1000, 3)
    assert len(tiny) > 0 and estimate_tokens(tiny) <= 3


def test_clip_chars_reports_trimmed_count() -> None:
    assert clip_chars("a" * 100, 10, head_fraction=1, marker="<{n}>") == "a" * 10 + "<90>"
