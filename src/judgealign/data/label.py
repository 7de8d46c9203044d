"""Labels: an expert's score and justification for one item on one dimension."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

LABEL_SCHEMA_VERSION = 1


class Label(BaseModel):
    """An expert verdict. ``id`` is stable: item, dimension and rater.

    >>> Label(item="nb1", dimension="model_use", score=2, rationale="ok", rater="ann").id
    'nb1::model_use::ann'
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = LABEL_SCHEMA_VERSION
    item: str = Field(min_length=1)
    dimension: str = Field(min_length=1)
    score: float
    rationale: str = ""
    rater: str = "expert"

    @field_validator("dimension", "rater")
    @classmethod
    def _no_separator(cls, value: str) -> str:
        # Item ids may contain "::" (SummEval's are article::system); the label id stays
        # parseable from the right only if dimension and rater never do.
        if "::" in value:
            raise ValueError(f"{value!r} must not contain '::'")
        return value

    @property
    def id(self) -> str:
        return f"{self.item}::{self.dimension}::{self.rater}"


def item_of(label_id: str) -> str:
    """The item part of a label id (item ids may themselves contain ``::``).

    >>> item_of("cnn-1::M5::coherence::expert")
    'cnn-1::M5'
    """
    return label_id.rsplit("::", 2)[0]
