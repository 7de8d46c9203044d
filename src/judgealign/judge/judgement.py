"""Judgement: one judge's verdict on one item and dimension, with its provenance."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from judgealign.providers.types import Usage

JUDGEMENT_SCHEMA_VERSION = 1


class Judgement(BaseModel):
    """A score (``None`` when the judgement failed), why, and what the judge saw.

    ``guidelines`` and ``episodes`` are the ids of the guidelines and retrieved examples in
    the judge's context (their texts live in the judge's memory).

    >>> j = Judgement(item="nb1", dimension="model_use", score=2, rationale="ok")
    >>> j.ok
    True
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = JUDGEMENT_SCHEMA_VERSION
    item: str
    dimension: str
    score: float | None
    rationale: str = ""
    raw: str = ""
    error: str | None = None
    model: str = ""
    usage: Usage = Field(default_factory=Usage)
    guidelines: tuple[str, ...] = ()
    episodes: tuple[str, ...] = ()
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None and self.score is not None

    @property
    def key(self) -> tuple[str, str]:
        return (self.item, self.dimension)
