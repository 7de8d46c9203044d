"""Items: the things a judge scores (a text answer with its inputs, or a notebook)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ITEM_SCHEMA_VERSION = 1


class Item(BaseModel):
    """One thing to judge.

    ``output`` is the judged text; for a notebook it is the raw ``.ipynb`` JSON. ``inputs``
    holds what produced it (source article, question, dialogue), shown to the judge as context.
    ``group`` names the shared input: cross-validation never splits a group across folds.

    >>> Item(id="a1", output="The cat sat.", inputs={"article": "A cat sat on a mat."}).group_id
    'a1'
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = ITEM_SCHEMA_VERSION
    id: str = Field(min_length=1)
    kind: Literal["text", "notebook"] = "text"
    output: str
    inputs: dict[str, str] = Field(default_factory=dict)
    group: str | None = None
    path: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def group_id(self) -> str:
        return self.group if self.group is not None else self.id
