"""Append-only judgement store: finished work survives interruption and is never redone."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from judgealign.data.files import write_text_atomic
from judgealign.data.jsonl import repair_torn_tail
from judgealign.judge.failures import redo_on_resume
from judgealign.judge.judgement import Judgement

Key = tuple[str, int, int, str, str]  # variant, repeat, fold, item, dimension


class JudgementStore:
    """JSON Lines of ``{"variant", "fold", "judgement"}``, flushed and fsynced per record;
    ``"repeat"`` too for the repeats of a repeated cross-validation after the first (a line
    without it is repeat 0, so folders written before repeats existed resume as they were).

    A torn last line (the process was killed mid-write) is cut on open, so the next record
    starts on a line of its own; finished lines are never touched. Judgements that
    failed because of the provider (not because the answer was unreadable) are retried on the
    next run: they say nothing about the judge. With ``retry_failed`` every failed judgement
    is (an unreadable answer is never cached, so it is really asked again).
    """

    def __init__(self, path: Path | None, *, retry_failed: bool = False) -> None:
        self.path = path
        self.retry_failed = retry_failed
        self.records: dict[Key, Judgement] = {}
        if path is not None and path.exists():
            repair_torn_tail(path)
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
                if redo_on_resume(j, self.retry_failed):
                    continue
                key = (
                    str(data["variant"]),
                    int(data.get("repeat", 0)),
                    int(data["fold"]),
                    j.item,
                    j.dimension,
                )
                self.records[key] = j

    def get(
        self, variant: str, fold: int, item: str, dimension: str, *, repeat: int = 0
    ) -> Judgement | None:
        return self.records.get((variant, repeat, fold, item, dimension))

    def done(self, variant: str, fold: int, *, repeat: int = 0) -> set[tuple[str, str]]:
        return {
            (k[3], k[4])
            for k in self.records
            if k[0] == variant and k[1] == repeat and k[2] == fold
        }

    def add(self, variant: str, fold: int, judgement: Judgement, *, repeat: int = 0) -> None:
        self.records[(variant, repeat, fold, judgement.item, judgement.dimension)] = judgement
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record: dict[str, object] = {"variant": variant, "fold": fold}
        if repeat:
            record["repeat"] = repeat
        record["judgement"] = judgement.model_dump(mode="json")
        line = json.dumps(record)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())


SETTINGS_FILE = "settings.json"


def _flat(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): value}


def check_run_settings(run_dir: Path, settings: dict[str, object]) -> None:
    """Record ``settings`` in a new run folder; refuse to resume one made with others.

    Stored judgements and fitted judges are reused by key (variant, fold, item), so resuming
    under another model, budget or split would silently mix two experiments.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> check_run_settings(d, {"params": {"k": 2}})
    >>> check_run_settings(d, {"params": {"k": 3}})
    Traceback (most recent call last):
    judgealign.errors.ConfigError: ... was made with other settings (params.k: 2 -> 3); ...
    """
    from judgealign.errors import ConfigError

    path = run_dir / SETTINGS_FILE
    settings = json.loads(json.dumps(settings, sort_keys=True, default=str))
    if path.exists():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(
                f"{path}: unreadable ({exc}); delete the run folder to start over"
            ) from exc
        if before != settings:
            old, new = _flat(before), _flat(settings)
            changed = [
                f"{k}: {old.get(k, '-')} -> {new.get(k, '-')}"
                for k in sorted(set(old) | set(new))
                if old.get(k) != new.get(k)
            ]
            raise ConfigError(
                f"{run_dir} was made with other settings ({'; '.join(changed[:4])}"
                f"{'; ...' if len(changed) > 4 else ''}); pass a new run folder or delete "
                "this one to start over"
            )
        return
    if any(run_dir.glob("judgements.jsonl")) or any(run_dir.glob("judges/*.json")):
        raise ConfigError(
            f"{run_dir} holds results without a record of their settings (made by an older "
            "judgealign); pass a new run folder or delete this one (cached responses are kept)"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    # Atomic: a run killed while writing it must not leave a folder that refuses to resume.
    write_text_atomic(path, json.dumps(settings, indent=1, sort_keys=True) + "\n")
