"""Base rates: how the experts spread their scores on a dimension, told to the judge.

A small judge that over- or under-penalises across the board is not moved by two examples
or a paraphrased anchor; it is told plainly how often the experts give each level, and, when
alignment ran the unaligned judge on the labelled items (``calibrate``), in which direction
that judge missed. Computed from the stored episodes at scoring time, so it costs no call,
follows every ``forget`` and persists nothing new.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from judgealign.memory.records import Episode
from judgealign.rubric.model import MAX_FULLY_ANCHORED_LEVELS, Scale

# Fewer labels than this say little about a base rate; the line is left out.
MIN_EPISODES = 5
# A wide scale (0-25, 0-100) whose labels use only a few values (MQM weights) gets each value's
# share; one whose labels spread out gets quartiles.
MAX_LISTED_VALUES = 8


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def describe_base_rates(episodes: Iterable[Episode], scale: Scale) -> str:
    """Two short sentences on the experts' score distribution and the unaligned judge's bias.

    >>> from judgealign.memory.records import Episode
    >>> s = Scale(min=1, max=3, anchors={1: "bad", 2: "ok", 3: "good"})
    >>> eps = [Episode(id=f"e{i}", item=f"i{i}", group=f"g{i}", dimension="d", rater="x",
    ...        text="t", score=v, judge_score=3) for i, v in enumerate([1, 1, 2, 2, 2, 3])]
    >>> text = describe_base_rates(eps, s)
    >>> text.split(": ")[1].split(". ")[0]
    '1 in 33%, 2 in 50%, 3 in 17% (median 2)'
    >>> text.split("(mean difference ")[1]
    '+1.2); correct for that.'
    """
    eps = list(episodes)
    if len(eps) < MIN_EPISODES:
        return ""
    n = len(eps)
    applicable = [e.score for e in eps if not scale.is_na(e.score)]
    parts: list[str] = []
    if applicable:
        arr = np.asarray(applicable, dtype=float)
        # Mean-of-raters scores (2.33) are counted at their nearest level.
        counts = Counter(int(np.clip(round(v), scale.min, scale.max)) for v in applicable)
        narrow = scale.max - scale.min + 1 <= MAX_FULLY_ANCHORED_LEVELS
        if narrow or len(counts) <= MAX_LISTED_VALUES:
            parts = [f"{lv} in {100 * c / n:.0f}%" for lv, c in sorted(counts.items())]
        else:
            q1, q3 = np.quantile(arr, [0.25, 0.75])
            parts = [f"a quarter at or below {_fmt(q1)}", f"a quarter at or above {_fmt(q3)}"]
        median = f" (median {_fmt(float(np.median(arr)))})"
    else:
        median = ""
    na = sum(1 for e in eps if scale.is_na(e.score))
    if na:
        parts.append(f"not applicable ({scale.na_value}) in {100 * na / n:.0f}%")
    text = (
        f"How the experts scored this dimension on {n} labelled items: "
        + ", ".join(parts)
        + median
        + "."
    )
    pairs = [
        (e.judge_score, e.score)
        for e in eps
        if e.judge_score is not None and not scale.is_na(e.score) and not scale.is_na(e.judge_score)
    ]
    if len(pairs) >= MIN_EPISODES:
        diff = np.asarray([j - x for j, x in pairs], dtype=float)
        above, below = float(np.mean(diff > 0)), float(np.mean(diff < 0))
        text += (
            f" An unaligned judge scored above the experts on {100 * above:.0f}% of them and "
            f"below on {100 * below:.0f}% (mean difference {float(np.mean(diff)):+.1f}); "
            "correct for that."
        )
    return text
