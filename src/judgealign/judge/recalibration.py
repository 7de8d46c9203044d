"""The calibration pass: an aligned judge scores its own labelled items as if held out.

Kept apart from ``Judge`` because it is a fit-time step with its own bookkeeping: which
labels already have a score (reused, never re-asked), which are new, and one calibration
fit per dimension and variant (memory/calibration.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from judgealign.data.item import Item
from judgealign.judge.judgement import Judgement
from judgealign.judge.params import Variant
from judgealign.memory.calibration import ScoreCalibration, calibration_points, fit_calibration

if TYPE_CHECKING:
    from judgealign.judge.judge import Judge
    from judgealign.memory.store import AlignmentMemory


async def fit_calibrations(
    judge: Judge,
    items: Iterable[Item],
    variants: Sequence[Variant],
    on_judgement: Callable[[Judgement], None] | None = None,
) -> AlignmentMemory:
    """``judge``'s memory with a fitted calibration per dimension for each of ``variants``.

    Labels whose item is in ``items`` and that have no score yet are judged by the variant
    with their input group left out of retrieval; scores from earlier passes are reused.
    """
    memory = judge.memory_
    assert memory is not None, "calibration needs a fitted judge"
    by_id = {it.id: it for it in items}
    updates: dict[str, dict[str, ScoreCalibration | None]] = {}
    for variant in variants:
        scores: dict[str, dict[str, float | None]] = {}
        todo: set[tuple[str, str]] = set()
        for dim in judge.rubric.dimensions:
            old = memory.calibration(dim.id, variant)
            scores[dim.id] = {p[0]: p[1] for p in old.points} if old is not None else {}
            todo.update(
                (e.item, dim.id)
                for e in memory.episodes(dim.id)
                if e.id not in scores[dim.id] and e.item in by_id
            )
        results = await judge.variant(variant)._judge_pairs(
            sorted(todo), by_id, on_judgement, leave_group_out=True
        )
        fresh = {j.key: j.score for j in results}
        for dim in judge.rubric.dimensions:
            episodes = memory.episodes(dim.id)
            if not episodes:
                continue
            known = scores[dim.id]
            for e in episodes:
                if e.id not in known and (e.item, dim.id) in fresh:
                    known[e.id] = fresh[(e.item, dim.id)]
            updates.setdefault(dim.id, {})[variant] = fit_calibration(
                calibration_points(episodes, known),
                {e.id: e.group for e in episodes},
                dim.scale,
                seed=judge.params.seed,
            )
    return memory.with_calibrations(updates)
