"""How many judgements failed and why: the line every run prints, and its exit decision.

A run whose judgements all failed (a 401 on every call, say) used to finish with exit code 0
and dashes in the table; CI scripts counted that as success.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from judgealign.judge.judgement import Judgement

DEFAULT_MAX_FAILED = 0.5  # a run that mostly failed says so and exits non-zero
_REASON_CHARS = 160


def redo_on_resume(judgement: Judgement, retry_failed: bool) -> bool:
    """Whether a resumed run asks again instead of keeping a stored judgement: always for a
    provider failure (it says nothing about the judge), for an unreadable answer only when
    asked (``retry_failed``), never for a judgement that succeeded.

    >>> bad = Judgement(item="a", dimension="d", score=None, error="unparseable answer: x")
    >>> redo_on_resume(bad, False), redo_on_resume(bad, True)
    (False, True)
    """
    if judgement.ok:
        return False
    return retry_failed or (judgement.error or "").startswith("provider")


@dataclass(frozen=True)
class FailureSummary:
    """Failed and total judgements, and the most common reasons (text, count).

    >>> s = FailureSummary.of([Judgement(item="a", dimension="d", score=None,
    ...                                  error="provider error: 401 Unauthorized")] * 3)
    >>> s.line()
    '3 of 3 judgements failed: provider error: 401 Unauthorized (3)'
    >>> s.too_many(0.5)
    True
    """

    failed: int
    total: int
    reasons: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, judgements: Iterable[Judgement], top: int = 3) -> FailureSummary:
        total = 0
        reasons: Counter[str] = Counter()
        for j in judgements:
            total += 1
            if not j.ok:
                reasons[(j.error or "no score").strip()[:_REASON_CHARS]] += 1
        return cls(sum(reasons.values()), total, tuple(reasons.most_common(top)))

    def line(self) -> str:
        why = "; ".join(f"{text} ({n})" for text, n in self.reasons)
        return f"{self.failed} of {self.total} judgements failed" + (f": {why}" if why else "")

    def too_many(self, max_failed: float) -> bool:
        """Nothing succeeded, or more than ``max_failed`` (a fraction) failed."""
        if self.total == 0 or self.failed == 0:
            return False
        return self.failed == self.total or self.failed / self.total > max_failed
