"""Rubric, Dimension and Scale: what a judge scores and how."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from judgealign.errors import ConfigError, DataError

RUBRIC_SCHEMA_VERSION = 1

# Scales with at most this many levels need an anchor text on every level; wider ones
# (0-100 ratings) need anchors at least on both ends.
MAX_FULLY_ANCHORED_LEVELS = 11


class Scale(BaseModel):
    """An integer scale ``min..max`` with an anchor text per level and an optional N/A value.

    >>> s = Scale(min=1, max=3, anchors={1: "bad", 2: "ok", 3: "good"}, na_value=0)
    >>> s.levels
    (1, 2, 3)
    """

    model_config = ConfigDict(frozen=True)

    min: int
    max: int
    anchors: dict[int, str]
    na_value: int | None = None
    na_description: str = "not applicable"
    # Penalty scales (error counts, MQM weights): the best level is ``min``. The judge's
    # instructions follow the direction ("reserve the top score" would invite penalties).
    lower_is_better: bool = False

    @model_validator(mode="after")
    def _check(self) -> Scale:
        if self.max <= self.min:
            raise ValueError(f"scale max ({self.max}) must be greater than min ({self.min})")
        if self.na_value is not None and self.min <= self.na_value <= self.max:
            raise ValueError(
                f"na_value {self.na_value} lies inside the scale {self.min}-{self.max}"
            )
        outside = [k for k in self.anchors if not self.min <= k <= self.max]
        if outside:
            raise ValueError(f"anchors {outside} lie outside the scale {self.min}-{self.max}")
        n_levels = self.max - self.min + 1
        if n_levels <= MAX_FULLY_ANCHORED_LEVELS:
            missing = [lv for lv in range(self.min, self.max + 1) if lv not in self.anchors]
            if missing:
                raise ValueError(f"anchors missing for levels {missing}")
        elif self.min not in self.anchors or self.max not in self.anchors:
            raise ValueError("a wide scale needs anchors at least at min and max")
        empty = [k for k, v in self.anchors.items() if not v.strip()]
        if empty:
            raise ValueError(f"anchor text is empty for levels {empty}")
        return self

    @property
    def levels(self) -> tuple[int, ...]:
        return tuple(range(self.min, self.max + 1))

    @property
    def best(self) -> int:
        """The level for work without a flaw: ``min`` on a penalty scale, else ``max``."""
        return self.min if self.lower_is_better else self.max

    @property
    def midpoint(self) -> int:
        """The middle level (rounded down), used by ``fake:constant``."""
        return (self.min + self.max) // 2

    def is_na(self, score: float | None) -> bool:
        return score is not None and self.na_value is not None and score == self.na_value

    def check(self, score: float, *, where: str = "") -> float:
        """Return ``score`` if it is on the scale (or N/A), else raise DataError."""
        if self.is_na(score) or self.min <= score <= self.max:
            return score
        na = f" or {self.na_value} (N/A)" if self.na_value is not None else ""
        raise DataError(
            f"{where}score {score} is off the scale {self.min}-{self.max}{na}; fix the score"
        )


class Dimension(BaseModel):
    """One rubric dimension, scored by one judge."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    name: str
    description: str
    scale: Scale
    # What the judge should look at / ignore: free text appended to the prompt.
    guidance: str = ""


class Rubric(BaseModel):
    """A set of dimensions judged on one kind of item.

    >>> from judgealign.rubric import load_rubric
    >>> r = load_rubric("ml-notebook")
    >>> r.dimension("data_imputation").scale.na_value
    0
    """

    model_config = ConfigDict(frozen=True)

    schema_version: int = RUBRIC_SCHEMA_VERSION
    id: str
    name: str
    description: str = ""
    item_kind: str = "text"  # "text" or "notebook": how items are rendered
    dimensions: tuple[Dimension, ...]

    @model_validator(mode="after")
    def _unique(self) -> Rubric:
        ids = [d.id for d in self.dimensions]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate dimension ids {dupes}")
        if not ids:
            raise ValueError("a rubric needs at least one dimension")
        return self

    @property
    def dimension_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.dimensions)

    def dimension(self, dimension_id: str) -> Dimension:
        for d in self.dimensions:
            if d.id == dimension_id:
                return d
        raise ConfigError(
            f"unknown dimension {dimension_id!r} for rubric {self.id!r}; "
            f"known: {', '.join(self.dimension_ids)}"
        )

    def subset(self, dimension_ids: list[str] | tuple[str, ...]) -> Rubric:
        """A rubric with only the given dimensions (in the given order)."""
        dims = tuple(self.dimension(d) for d in dimension_ids)
        return self.model_copy(update={"dimensions": dims})
