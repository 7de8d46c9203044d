"""Reading user files so that a bad one is a one-line error naming it, never a traceback."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from judgealign.errors import DataError


def read_text(path: Path, *, encoding: str = "utf-8") -> str:
    """The file's text; DataError naming the file when it is missing, a folder, unreadable
    or not UTF-8.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.jsonl"
    >>> _ = p.write_bytes(b"\\xff")
    >>> read_text(p)
    Traceback (most recent call last):
    judgealign.errors.DataError: ...x.jsonl: not UTF-8 text (byte 0xff at offset 0); re-save...
    """
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: {_not_utf8(exc)}; re-save it as UTF-8") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder; name a file") from None
    except FileNotFoundError:
        raise DataError(f"{path}: not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def lines(path: Path, *, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a text file, with the errors of ``read_text``."""
    yield from enumerate(read_text(path, encoding=encoding).splitlines(keepends=True), 1)


def loads_json(text: str, where: str, fix: str) -> Any:
    """Parsed JSON; DataError naming ``where`` (and ``fix``) for invalid or absurdly deeply
    nested JSON, which the parser would otherwise answer with a RecursionError.

    >>> loads_json("[" * 100000, "x.json", "give one object")
    Traceback (most recent call last):
    judgealign.errors.DataError: x.json: JSON nested too deeply; give one object
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON (line {exc.lineno}: {exc.msg}); {fix}") from None
    except RecursionError:
        raise DataError(f"{where}: JSON nested too deeply; {fix}") from None


def write_text_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place: a process
    killed mid-write leaves the old file or the new one, never half of one.

    >>> import tempfile
    >>> p = write_text_atomic(Path(tempfile.mkdtemp()) / "s.json", "{}")
    >>> p.read_text()
    '{}'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _not_utf8(exc: UnicodeDecodeError) -> str:
    byte = exc.object[exc.start : exc.start + 1].hex()
    return f"not UTF-8 text (byte 0x{byte} at offset {exc.start})"
