"""The labelling page and its JSON API on loopback, over a ``LabellingSession``.

Routes: ``GET /`` (the page), ``GET /api/state[?order=disagreements]``,
``GET /api/items/<url-encoded item id>`` and ``POST /api/labels`` with
``{item, dimension, score, rationale}``.
Bad requests answer 400 with ``{"error": "..."}``.

>>> with LabellingServer(session) as srv:  # doctest: +SKIP
...     srv.url
'http://127.0.0.1:40123/'
"""

from __future__ import annotations

from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit

from judgealign.errors import ConfigError, JudgeAlignError
from judgealign.http_base import JSONHandler, LoopbackService
from judgealign.labelling.page import content_security_policy, page_html
from judgealign.labelling.session import LabellingSession, Order


class BadRequest(ValueError):
    """A request the page should never send (answered with HTTP 400)."""


class LabellingServer(LoopbackService):
    """Serve ``session`` to a browser on ``host:port`` (``port=0`` picks a free one).

    >>> LabellingServer.thread_name
    'judgealign-label-http'
    """

    thread_name: ClassVar[str | None] = "judgealign-label-http"

    def __init__(self, session: LabellingSession, *, host: str = "127.0.0.1", port: int = 0):
        super().__init__(_Handler, host=host, port=port)
        self.session = session

    def start(self) -> Self:
        """Bind and serve; ConfigError (one line) when the port is taken."""
        try:
            return super().start()
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port} ({err}); pick another --port"
            ) from None

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:40123/``."""
        return self.base_url.removesuffix("/v1") + "/"

    # -- API (called from request threads) --------------------------------------------------
    def state(self, query: dict[str, list[str]]) -> dict[str, Any]:
        order = (query.get("order") or ["file"])[0]
        if order not in ("file", "disagreements"):
            raise BadRequest(f"order {order!r} is not one of file, disagreements")
        chosen: Order = "disagreements" if order == "disagreements" else "file"
        return self.session.state(chosen).model_dump(mode="json")

    def item(self, raw_id: str) -> dict[str, Any]:
        return self.session.view(unquote(raw_id)).model_dump(mode="json")

    def save(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object {item, dimension, score}")
        for key in ("item", "dimension"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise BadRequest(f"give {key!r} as a non-empty string")
        if "score" not in body:
            raise BadRequest("give 'score' (a level of the dimension's scale)")
        rationale = body.get("rationale") or ""
        if not isinstance(rationale, str):
            raise BadRequest("give 'rationale' as a string")
        label = self.session.save(body["item"], body["dimension"], body["score"], rationale)
        return label.model_dump(mode="json")


class _Handler(JSONHandler):
    owner: LabellingServer

    def _host_ok(self) -> bool:
        # A page on another site could reach 127.0.0.1 through DNS rebinding; its requests
        # carry that site's host name, so anything but a loopback name is refused.
        host = (self.headers.get("Host") or "").strip().lower()
        if self.loopback_host() and not self.foreign_origin():
            return True
        self.close_connection = True  # its body, if any, stays unread
        self.send_json(403, {"error": f"host {host!r} refused; open the page at 127.0.0.1"})
        return False

    def _fail(self, status: int, message: str) -> None:
        self.send_json(status, {"error": message}, {"Cache-Control": "no-store"})

    def _dispatch(self, method: str) -> None:
        if not self._host_ok():
            return
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        owner = self.owner
        body: Any = None
        try:
            if method == "POST":
                # Read the body even when refusing it: unread bytes would poison the next
                # request on this keep-alive connection.
                try:
                    body = self.read_json()
                except ValueError:
                    self.close_connection = True  # a bad Content-Length leaves bytes unread
                    raise BadRequest("the request body is not JSON") from None
                # A JSON content type forces a CORS preflight, which this server never grants,
                # so pages on other sites cannot write labels.
                if not self.json_content_type():
                    raise BadRequest("send the label as Content-Type: application/json")
            if method == "GET" and path in ("/", "/index.html"):
                self._send_page()
            elif method == "GET" and path == "/api/state":
                self.send_json(200, owner.state(query), {"Cache-Control": "no-store"})
            elif method == "GET" and path.startswith("/api/items/"):
                raw = path.removeprefix("/api/items/")
                self.send_json(200, owner.item(raw), {"Cache-Control": "no-store"})
            elif method == "POST" and path == "/api/labels":
                self.send_json(200, owner.save(body))
            else:
                self._fail(404, f"no route {method} {path}")
        except (BadRequest, JudgeAlignError) as err:
            self._fail(400, str(err))
        except Exception as err:  # the page must outlive one bad request
            self._fail(500, f"{type(err).__name__}: {err}")

    def _send_page(self) -> None:
        data = page_html().encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", content_security_policy(header=True))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")
