"""What an agent run stores, one JSON line per finished step (see ``agent.store``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from judgealign.agent.execution import ExecutionResult
from judgealign.agent.task import FailureKind
from judgealign.judge.judgement import Judgement
from judgealign.providers.types import Usage

RECORD_SCHEMA_VERSION = 1


def notebook_id(case: str, index: int) -> str:
    """The id of notebook ``index`` of ``case``: also its item id for the judges.

    >>> notebook_id("churn-missing", 2)
    'churn-missing/2'
    """
    return f"{case}/{index}"


class Generation(BaseModel):
    """One notebook's generation: ``ok`` with the run-relative ``notebook`` path, or
    ``failed`` with ``failure`` (crash, timeout, invalid, provider) and ``reason``."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = RECORD_SCHEMA_VERSION
    case: str
    index: int = Field(ge=1)
    status: str = "ok"
    failure: FailureKind | None = None
    reason: str = ""
    notebook: str | None = None
    sha256: str | None = None
    agent: str = ""
    seconds: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    recovered: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def id(self) -> str:
        return notebook_id(self.case, self.index)


class Execution(BaseModel):
    """One notebook's execution (``--execute``)."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = RECORD_SCHEMA_VERSION
    case: str
    index: int = Field(ge=1)
    sha256: str | None = None
    result: ExecutionResult

    @property
    def id(self) -> str:
        return notebook_id(self.case, self.index)


class ScoredJudgement(BaseModel):
    """A judgement of one notebook (``sha256`` of the notebook judged) on one dimension, with
    the judge file that gave it (the run keeps a copy, so the guidelines and examples it names
    stay readable)."""

    model_config = ConfigDict(frozen=True)

    schema_version: int = RECORD_SCHEMA_VERSION
    case: str
    index: int = Field(ge=1)
    sha256: str | None = None
    judge: str
    judgement: Judgement

    @property
    def id(self) -> str:
        return notebook_id(self.case, self.index)
