"""Per-rater tokens: each rater's secret link to a labelling server shared by several raters.

A tokens file is JSON ``{"rater": "token", ...}``, private to its owner (mode 0600). Raters
named that the file lacks get a fresh token and the file is rewritten, so links already sent
keep working across restarts.

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "tokens.json"
>>> tokens = rater_tokens(["ann", "bob"], path)
>>> sorted(tokens.values()), rater_tokens(["ann"], path) == {t: "ann" for t, r in tokens.items()
...                                                         if r == "ann"}
(['ann', 'bob'], True)
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from judgealign.errors import DataError
from judgealign.labelling.store import atomic_write


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DataError(
            f'{path}: not a tokens file; give JSON {{"rater": "token"}} or a new path'
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise DataError(f'{path}: not a tokens file; give JSON {{"rater": "token"}}')
    return data


def rater_tokens(raters: Sequence[str], path: Path | None = None) -> dict[str, str]:
    """Token -> rater for ``raters`` (every rater in the file when ``raters`` is empty).

    Tokens come from ``path`` when it names them, otherwise they are generated (32 URL-safe
    random characters) and, with a ``path``, written there.
    """
    known = _read(path) if path is not None and path.exists() else {}
    wanted = list(raters) or list(known)
    if not wanted:
        raise DataError(f"{path}: no raters in the tokens file; name them with --rater")
    changed = False
    for rater in wanted:
        if rater not in known:
            known[rater] = secrets.token_urlsafe(24)
            changed = True
    if path is not None and changed:

        def write(tmp: Path) -> None:
            tmp.write_text(json.dumps(known, indent=1) + "\n", encoding="utf-8")
            os.chmod(tmp, 0o600)

        existed = path.exists()
        atomic_write(path, write)
        if not existed:
            os.chmod(path, 0o600)  # atomic_write gives new files 0644
    tokens = {known[r]: r for r in wanted}
    if len(tokens) != len(wanted):
        raise DataError(f"{path}: two raters share a token; give each its own")
    return tokens
