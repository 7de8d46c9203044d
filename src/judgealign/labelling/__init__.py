"""Expert labelling in a browser: sessions, the concurrent-safe label store, the page and server.

>>> from judgealign.labelling import LabellingServer, LabellingSession
>>> with LabellingServer(session) as srv:  # doctest: +SKIP
...     print(srv.url)
http://127.0.0.1:40123/
"""

from judgealign.labelling.judges import JudgeSource, read_judge_file, read_judgements
from judgealign.labelling.server import LabellingServer
from judgealign.labelling.session import (
    Agreement,
    ItemSummary,
    ItemView,
    JudgeView,
    LabellingSession,
    SessionState,
)
from judgealign.labelling.store import Adjudication, Change, LabelStore

__all__ = [
    "Adjudication",
    "Agreement",
    "Change",
    "ItemSummary",
    "ItemView",
    "JudgeSource",
    "JudgeView",
    "LabelStore",
    "LabellingServer",
    "LabellingSession",
    "SessionState",
    "read_judge_file",
    "read_judgements",
]
