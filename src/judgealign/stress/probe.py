"""Probes: known edits of a notebook whose effect on a judge's scores is known in advance.

Three kinds, told apart by what a good judge does with them:

- ``flaw``: plants one flaw a rubric dimension names; that dimension should drop to at most
  ``max_score`` (the rubric anchor the flaw belongs to).
- ``invariance``: changes nothing a reviewer would grade (names, layout, comments, the order
  of independent cells); no score should move. A move is a false alarm.
- ``injection``: text aimed at the judge inside the notebook; no score should move towards
  what it asks for.

A probe either applies (the notebook has what it changes) or says why not; when it applies
the outcome records exactly what changed, cell by cell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from judgealign.errors import DataError
from judgealign.stress.notebook import CellChange, Notebook, changes_between

PROBE_SCHEMA_VERSION = 1

ProbeKind = Literal["flaw", "invariance", "injection"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("flaw", "invariance", "injection")


class NotApplicable(Exception):
    """The notebook lacks what the probe changes (the message says what)."""


class ProbeSpec(BaseModel):
    """What a probe does and what a good judge does about it.

    ``dimension``/``max_score``: for a flaw, the dimension it hurts and the highest score that
    dimension may keep (its rubric anchor). ``target_score``: for an injection, the score the
    planted text asks for (``None``: the scale's best).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: ProbeKind
    summary: str
    dimension: str | None = None
    max_score: int | None = None
    target_score: int | None = None


class ProbeOutcome(BaseModel):
    """One probe on one notebook: applied with its changes, or not, with the reason."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = PROBE_SCHEMA_VERSION
    probe: str
    item: str
    applied: bool
    reason: str = ""
    notes: tuple[str, ...] = ()
    changes: tuple[CellChange, ...] = ()
    python_cells: int = 0
    python_cells_after: int = 0
    sha256: str = ""  # of the changed notebook's JSON
    extra: dict[str, Any] = Field(default_factory=dict)


Transform = Callable[[Notebook, np.random.Generator], None]


@dataclass(frozen=True)
class Probe:
    """A named transform with its spec. ``transform(nb, rng)`` edits ``nb`` in place and raises
    :class:`NotApplicable` when the notebook lacks what it changes."""

    spec: ProbeSpec
    transform: Transform

    @property
    def name(self) -> str:
        return self.spec.name

    def apply(
        self, notebook: str | dict[str, Any], *, item: str = "", seed: int = 0
    ) -> tuple[ProbeOutcome, str]:
        """The outcome and the changed notebook's JSON (``""`` when not applied).

        ``notebook`` is the ``.ipynb`` text or its parsed mapping (left unchanged). The
        probe's random choices depend on ``seed``, the probe and the item only.
        """
        import hashlib

        from judgealign.render.notebook import parse_notebook

        data = parse_notebook(notebook, source=item) if isinstance(notebook, str) else notebook
        nb = Notebook(data, item=item)
        before = set(nb.python_cells())
        rng = np.random.default_rng([seed, _stable_hash(self.name), _stable_hash(item)])
        try:
            self.transform(nb, rng)
        except NotApplicable as why:
            return self._skip(item, str(why), len(before)), ""
        except DataError as why:
            return self._skip(item, f"cannot edit cleanly: {why}", len(before)), ""
        except ValueError as why:
            return self._skip(item, f"internal: {why}", len(before)), ""
        changes = changes_between(nb.original, nb)
        if not changes:
            return self._skip(item, "nothing to change", len(before)), ""
        broken = [
            new
            for new, origin in enumerate(nb.origin)
            if nb.kind(new) == "code"
            and (origin is None or origin in before)
            and not nb.code(new).ok
        ]
        if broken:
            # A probe must never hand the judge broken code it did not mean to plant.
            detail = nb.code(broken[0]).error
            return self._skip(
                item, f"internal: cell {broken[0]} no longer parses ({detail})", len(before)
            ), ""
        text = nb.to_json()
        outcome = ProbeOutcome(
            probe=self.name,
            item=item,
            applied=True,
            notes=tuple(nb.notes),
            changes=tuple(changes),
            python_cells=len(before),
            python_cells_after=len(nb.python_cells()),
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )
        return outcome, text

    def _skip(self, item: str, reason: str, python_cells: int) -> ProbeOutcome:
        return ProbeOutcome(
            probe=self.name,
            item=item,
            applied=False,
            reason=reason,
            python_cells=python_cells,
            python_cells_after=python_cells,
        )


def _stable_hash(text: str) -> int:
    """A process-independent seed part (``hash()`` of a str changes between runs)."""
    import zlib

    return zlib.crc32(text.encode("utf-8"))
