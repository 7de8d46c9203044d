"""Expert labelling in a browser: a session (items, rubric, labels file) and its page.

>>> from judgealign.labelling import LabellingServer, LabellingSession
>>> with LabellingServer(session) as srv:  # doctest: +SKIP
...     print(srv.url)
http://127.0.0.1:40123/
"""

from judgealign.labelling.server import LabellingServer
from judgealign.labelling.session import (
    ItemSummary,
    ItemView,
    JudgeView,
    LabellingSession,
    SessionState,
    read_judgements,
)

__all__ = [
    "ItemSummary",
    "ItemView",
    "JudgeView",
    "LabellingServer",
    "LabellingSession",
    "SessionState",
    "read_judgements",
]
