"""The agent interface: what an agent is given (``AgentTask``), what it returns
(``AgentOutput``), and the one Protocol every adapter implements.

An agent writes one notebook per call. It may return the notebook (JSON text, a mapping, an
``nbformat`` node or a path) or write it to ``task.notebook_path``; the runner checks it either
way. Raising ``AgentError`` (or any exception) records a failed notebook with that reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from judgealign.agent.suite import AgentCase
from judgealign.errors import JudgeAlignError
from judgealign.providers.types import Usage

# Why a notebook is missing: the agent failed (raised, exited non-zero), ran out of time,
# wrote nothing usable, or its model provider failed (retried on resume: it says nothing about
# the agent).
FailureKind = Literal["crash", "timeout", "invalid", "provider"]


class AgentError(JudgeAlignError):
    """An agent could not write its notebook; ``kind`` says how (see ``FailureKind``)."""

    def __init__(self, message: str, kind: FailureKind = "crash") -> None:
        super().__init__(message)
        self.kind: FailureKind = kind


@dataclass(frozen=True)
class AgentTask:
    """One notebook to write: notebook ``index`` (1-based) of ``case``.

    ``workdir`` is a fresh folder for this attempt, holding the case's files in ``data/``
    (``data_files``); notebooks read them as ``data/<name>``. ``prompt`` is the case's prompt
    with a description of the data. ``seed`` differs per notebook of a case.

    >>> from judgealign.agent.suite import load_suite
    >>> case = load_suite("example").case("houses-brief")
    >>> task = AgentTask(case, 2, "Model house prices.", Path("w"), Path("w/notebook.ipynb"))
    >>> (task.case.task, task.index, task.data_dir.as_posix())
    ('regression', 2, 'w/data')
    """

    case: AgentCase
    index: int
    prompt: str
    workdir: Path
    notebook_path: Path
    data_files: tuple[Path, ...] = ()
    seed: int = 0

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"


@dataclass(frozen=True)
class AgentOutput:
    """What an agent returns: the ``notebook`` (``None`` when written to
    ``task.notebook_path``), the model ``usage`` it spent, and a ``log`` kept in the run.

    >>> AgentOutput(notebook="```python\\nprint(1)\\n```").usage.calls
    0
    """

    notebook: Any = None
    usage: Usage = field(default_factory=Usage)
    log: str = ""


@runtime_checkable
class Agent(Protocol):
    """Writes a notebook for a task. ``name`` identifies the agent (and, by default, the
    version a scoreboard is filed under). Any object with these two members is an agent.

    >>> class Echo:
    ...     name = "echo"
    ...     async def generate(self, task: AgentTask) -> AgentOutput:
    ...         return AgentOutput(notebook="```python\\nprint('hi')\\n```")
    >>> isinstance(Echo(), Agent)
    True
    """

    @property
    def name(self) -> str: ...

    async def generate(self, task: AgentTask) -> AgentOutput: ...
