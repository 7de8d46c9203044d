"""Judges' scores beside the experts' labels: judgements files, and how unsure the judges are.

Two kinds of file are read:

- ``judgealign score --out`` JSONL: one ``Judgement`` a line, one judge (named by the file);
- an evaluation run's ``judgements.jsonl`` (``{"variant", "fold", "judgement"}`` lines): one
  judge per variant (``baseline``, ``full``, ...), each item judged in its test fold.

A judgement line may carry ``score_probs`` (the judge's probability per level, as the
providers read them from logprobs): the spread of that distribution is the most direct
measure of how unsure the judge is. Without it, judges that disagree with each other (the
zero-shot and the aligned one) mark the items worth an expert's time.

>>> import json, tempfile
>>> from pathlib import Path
>>> p = Path(tempfile.mkdtemp()) / "scored.jsonl"
>>> _ = p.write_text(json.dumps({"item": "a", "dimension": "d", "score": 2}) + "\\n")
>>> [(s.name, len(s.judgements)) for s in read_judge_file(p)]
[('scored', 1)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from judgealign.errors import DataError
from judgealign.judge.judgement import Judgement
from judgealign.rubric.model import Scale

JudgeKey = tuple[str, str]  # item reference, dimension


@dataclass
class JudgeSource:
    """One judge's judgements (the last line per item and dimension wins, a failure never
    hides a success) and, where the file has them, its score probabilities."""

    name: str
    judgements: dict[JudgeKey, Judgement] = field(default_factory=dict)
    probs: dict[JudgeKey, dict[str, float]] = field(default_factory=dict)

    def add(self, judgement: Judgement, probs: Any) -> None:
        found = self.judgements.get(judgement.key)
        if judgement.ok or not (found is not None and found.ok):
            self.judgements[judgement.key] = judgement
            clean = _probs(probs)
            if clean and judgement.ok:
                self.probs[judgement.key] = clean
            else:
                self.probs.pop(judgement.key, None)


def _probs(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        return {}
    out: dict[str, float] = {}
    for level, p in raw.items():
        if isinstance(p, int | float) and math.isfinite(p) and p >= 0:
            out[str(level)] = float(p)
    return out


def read_judge_file(path: Path) -> list[JudgeSource]:
    """The judges in one judgements file: one for ``score --out``, one per variant for a run's.

    A torn last line (an interrupted run) is skipped; any other bad line is a DataError.
    """
    if path.is_dir():
        path = path / "judgements.jsonl"
    if not path.is_file():
        raise DataError(
            f"{path}: judgements file not found; give the --out of `judgealign score` or an "
            "evaluate run folder"
        )
    # split("\n"), not splitlines(): rationales may hold a raw U+2028 or form feed.
    text = path.read_text(encoding="utf-8")
    lines = [(n, line) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    sources: dict[str, JudgeSource] = {}
    for number, line in lines:
        try:
            data = json.loads(line)
            if isinstance(data, dict) and isinstance(data.get("judgement"), dict):
                name = str(data.get("variant") or path.stem)
                record = data["judgement"]
            else:
                name, record = path.stem, data
            j = Judgement.model_validate(record)
        except (ValueError, ValidationError, TypeError):
            if number == lines[-1][0]:
                continue
            raise DataError(
                f"{path}:{number}: not a judgement; give the JSONL that `judgealign score` "
                "or `judgealign evaluate` wrote"
            ) from None
        source = sources.setdefault(name, JudgeSource(name))
        source.add(j, record.get("score_probs") if isinstance(record, dict) else None)
    return list(sources.values())


def read_judgements(path: Path) -> list[Judgement]:
    """Judgements from a ``judgealign score --out`` file; the last line per item wins.

    For a run's file with several variants, the last variant's (the aligned judge's).
    """
    sources = read_judge_file(path)
    return list(sources[-1].judgements.values()) if sources else []


def spread_of_probs(probs: Mapping[str, float], scale: Scale) -> float | None:
    """How unsure a judge's score distribution is, 0 (certain) to 1 (split between the ends).

    The standard deviation of the applicable levels, over half the scale's range; mass on
    N/A counts as doubt too (the judge is not sure the dimension applies).

    >>> from judgealign.rubric.model import Scale
    >>> s = Scale(min=1, max=3, anchors={1: "a", 2: "b", 3: "c"}, na_value=0)
    >>> spread_of_probs({"1": 0.5, "3": 0.5}, s), spread_of_probs({"2": 1.0}, s)
    (1.0, 0.0)
    """
    pairs: list[tuple[float, float]] = []
    na_mass = 0.0
    for key, p in probs.items():
        try:
            level = float(key)
        except ValueError:
            continue
        if scale.is_na(level):
            na_mass += p
        elif scale.min <= level <= scale.max:
            pairs.append((level, p))
    total = sum(p for _, p in pairs)
    if total + na_mass <= 0:
        return None
    if total <= 0:
        return 0.0  # sure it does not apply
    mean = sum(level * p for level, p in pairs) / total
    var = sum(p * (level - mean) ** 2 for level, p in pairs) / total
    spread = math.sqrt(var) / ((scale.max - scale.min) / 2)
    # A split between "applies" and "N/A" is doubt of its own: 4q(1-q) is 1 at an even split.
    q = na_mass / (total + na_mass)
    return float(min(1.0, max(spread, 4 * q * (1 - q))))


def spread_of_scores(scores: list[float], scale: Scale) -> float | None:
    """How far judges' scores are apart, 0 to 1; N/A against a score counts as 1.

    >>> from judgealign.rubric.model import Scale
    >>> s = Scale(min=1, max=3, anchors={1: "a", 2: "b", 3: "c"}, na_value=0)
    >>> spread_of_scores([1, 2], s), spread_of_scores([0, 2], s), spread_of_scores([2], s)
    (0.5, 1.0, None)
    """
    if len(scores) < 2:
        return None
    na = [scale.is_na(s) for s in scores]
    if any(na):
        return 0.0 if all(na) else 1.0
    return float((max(scores) - min(scores)) / (scale.max - scale.min))
