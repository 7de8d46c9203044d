"""Labels: an expert's score and justification for one item on one dimension."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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

    @property
    def id(self) -> str:
        return f"{self.item}::{self.dimension}::{self.rater}"
