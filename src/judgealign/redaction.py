"""Secrets out of every error judgealign stores or prints.

A server that echoes the request (some proxies do on 4xx) put the caller's Authorization
header into the error text, and from there into judgements files, reports and the console.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
_PATTERNS = (
    # "Authorization: Bearer abc", "authorization=abc", JSON '"Authorization": "Bearer abc"'
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(bearer\s+|basic\s+)?[^\s,;\"'}]+"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{6,}"),
    re.compile(r"(?i)((?:x-)?api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s,;\"'&}]+"),
    re.compile(r"\b(sk-)[A-Za-z0-9_-]{8,}"),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with API keys and Authorization values masked, known ``secrets`` too.

    >>> redact('HTTP 401: {"echo": {"Authorization": "Bearer sk-live-1234567890"}}')
    'HTTP 401: {"echo": {"Authorization": "Bearer ***"}}'
    >>> redact("bad key my-key-42 for api_key=my-key-42", secrets=["my-key-42"])
    'bad key *** for api_key=***'
    """
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: "".join(g or "" for g in m.groups()) + MASK, text)
    return text.replace(MASK + MASK, MASK)
