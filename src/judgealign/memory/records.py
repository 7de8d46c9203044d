"""The two kinds of memory records: guidelines (semantic) and episodes (episodic)."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

MEMORY_RECORD_SCHEMA_VERSION = 1


def guideline_id(dimension: str, text: str) -> str:
    digest = hashlib.sha256(f"{dimension}\n{text.strip().lower()}".encode()).hexdigest()
    return f"g-{digest[:12]}"


class Guideline(BaseModel):
    """A short rule distilled from expert labels; ``sources`` are the label ids behind it.

    >>> g = Guideline.create("data_imputation", "Imputer fit before the split is leakage: 1.",
    ...                      sources=("nb1::data_imputation::expert",))
    >>> g.support
    1
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = MEMORY_RECORD_SCHEMA_VERSION
    id: str
    dimension: str
    text: str = Field(min_length=1)
    sources: tuple[str, ...]

    @classmethod
    def create(cls, dimension: str, text: str, sources: tuple[str, ...]) -> Guideline:
        return cls(
            id=guideline_id(dimension, text),
            dimension=dimension,
            text=text.strip(),
            sources=tuple(sorted(set(sources))),
        )

    @property
    def support(self) -> int:
        return len(self.sources)


class Episode(BaseModel):
    """A labelled example kept verbatim: the rendered item (truncated), the expert's verdict.

    ``id`` is the label id.
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = MEMORY_RECORD_SCHEMA_VERSION
    id: str
    item: str
    group: str
    dimension: str
    rater: str
    text: str
    score: float
    rationale: str = ""
