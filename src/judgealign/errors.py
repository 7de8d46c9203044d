"""Exception hierarchy.

Every error a user can cause carries a one-line message that names the file (or object) and
the fix, so the CLI can print it as is.
"""

from __future__ import annotations

from judgealign.redaction import redact


class JudgeAlignError(Exception):
    """Base class of every judgealign error."""


class ConfigError(JudgeAlignError):
    """A rubric, option or provider name is invalid."""


class DataError(JudgeAlignError):
    """Input data (items, labels, memory files) is malformed or inconsistent."""


class ProviderError(JudgeAlignError):
    """A model provider failed. ``transient`` errors are worth retrying."""

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None) -> None:
        # Error text reaches judgements files, reports and the console: never a secret.
        super().__init__(redact(message))
        self.transient = transient
        self.status = status


class ParseError(JudgeAlignError):
    """A model answer could not be parsed into the expected structure."""

    def __init__(self, message: str, raw: str = "") -> None:
        super().__init__(message)
        self.raw = raw


class NotFittedError(JudgeAlignError):
    """A method that needs a fitted judge was called on an unfitted one."""
