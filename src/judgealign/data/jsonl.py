"""Append-only JSON Lines files that survive a process killed mid-write."""

from __future__ import annotations

import os
from pathlib import Path


def repair_torn_tail(path: Path) -> bool:
    """Cut a torn last line (no final newline: the writer was killed mid-record) so that the
    next append starts on a line of its own; returns whether anything was cut.

    Only the unfinished record goes: every complete line ends with a newline and is kept.
    Without this, the next record is glued onto the torn one and both are unreadable.

    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "j.jsonl"
    >>> _ = p.write_text('{"a": 1}\\n{"b": ')
    >>> repair_torn_tail(p), p.read_text()
    (True, '{"a": 1}\\n')
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size == 0:
        return False
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return False
        # Walk back to the last newline in blocks; a file with none is one torn record.
        end = size
        keep = 0
        while end > 0:
            start = max(0, end - 65536)
            fh.seek(start)
            block = fh.read(end - start)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            end = start
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return True
