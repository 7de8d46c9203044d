"""Append-only judgement store: finished work survives interruption and is never redone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from judgealign.judge.judgement import Judgement

Key = tuple[str, int, str, str]  # variant, fold, item, dimension


class JudgementStore:
    """JSON Lines of ``{"variant", "fold", "judgement"}``, flushed and fsynced per record.

    A torn last line (the process was killed mid-write) is ignored on load. Judgements that
    failed because of the provider (not because the answer was unreadable) are retried on the
    next run: they say nothing about the judge.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: dict[Key, Judgement] = {}
        if path is not None and path.exists():
            self._load(path)

    def _load(self, path: Path) -> None:
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                    j = Judgement.model_validate(data["judgement"])
                except (ValueError, KeyError, TypeError, ValidationError):
                    continue
                if j.error and j.error.startswith("provider error"):
                    continue
                self.records[(str(data["variant"]), int(data["fold"]), j.item, j.dimension)] = j

    def get(self, variant: str, fold: int, item: str, dimension: str) -> Judgement | None:
        return self.records.get((variant, fold, item, dimension))

    def done(self, variant: str, fold: int) -> set[tuple[str, str]]:
        return {(k[2], k[3]) for k in self.records if k[0] == variant and k[1] == fold}

    def add(self, variant: str, fold: int, judgement: Judgement) -> None:
        self.records[(variant, fold, judgement.item, judgement.dimension)] = judgement
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"variant": variant, "fold": fold, "judgement": judgement.model_dump(mode="json")}
        )
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())
