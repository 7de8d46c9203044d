"""The labelling page and its JSON API over a ``LabellingSession``.

Routes: ``GET /`` (the page), ``GET /api/state[?order=file|disagreements|uncertain]``,
``GET /api/items/<url-encoded item id>``, ``POST /api/labels`` with
``{item, dimension, score, rationale}``, ``GET /api/agreement/<dimension>``,
``POST /api/adjudications`` with ``{item, dimension, score, rationale}`` and
``GET /api/history[?item=<id>]``.

On 127.0.0.1 with no tokens, every request labels as the session's rater. With ``tokens``
(token -> rater) every API request must carry ``Authorization: Bearer <token>`` and labels
as that token's rater; binding beyond loopback requires tokens. Malformed requests answer
400 (an oversized body 413) with ``{"error": "..."}``; the connection of a request whose
body was not read whole is closed, so nothing can hang or poison the next request.

>>> with LabellingServer(session) as srv:  # doctest: +SKIP
...     srv.url
'http://127.0.0.1:40123/'
"""

from __future__ import annotations

import hmac
import socket
from collections.abc import Mapping
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, unquote, urlsplit

from judgealign.errors import ConfigError, JudgeAlignError
from judgealign.http_base import LOOPBACK_NAMES, BodyTooLarge, JSONHandler, LoopbackService
from judgealign.labelling.page import content_security_policy, page_html
from judgealign.labelling.session import ORDERS, LabellingSession, Order, check_rater

#: A label is a score and a justification of at most 20,000 characters (JSON-escaped, each
#: may take up to 12 bytes): nothing bigger is ever a label.
MAX_BODY_BYTES = 256 * 1024
MIN_TOKEN_CHARS = 16


class BadRequest(ValueError):
    """A request the page should never send (answered with HTTP 400)."""


class Unauthorized(ValueError):
    """An API request without a valid rater token (answered with HTTP 401)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or name.

    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0"), is_loopback("::1")
    (True, False, True)
    """
    name = host.strip().strip("[]").lower()
    return name in LOOPBACK_NAMES or name.startswith("127.")


class LabellingServer(LoopbackService):
    """Serve ``session`` to browsers on ``host:port`` (``port=0`` picks a free one).

    ``tokens`` maps each rater's secret token to the rater's name; required when ``host``
    is not a loopback address.

    >>> LabellingServer.thread_name
    'judgealign-label-http'
    """

    thread_name: ClassVar[str | None] = "judgealign-label-http"

    def __init__(
        self,
        session: LabellingSession,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Mapping[str, str] | None = None,
    ):
        super().__init__(_Handler, host=host, port=port)
        self.session = session
        self.tokens = dict(tokens or {})

    def start(self) -> Self:
        """Bind and serve; ConfigError (one line) when the port is taken or tokens missing."""
        if not is_loopback(self.host) and not self.tokens:
            raise ConfigError(
                f"--host {self.host} lets other machines in: give each rater a token "
                "(--tokens FILE), or bind 127.0.0.1"
            )
        for token, rater in self.tokens.items():
            if len(token) < MIN_TOKEN_CHARS:
                raise ConfigError(
                    f"the token of rater {rater!r} is too short; use {MIN_TOKEN_CHARS}+ "
                    "random characters (a new --tokens file gets them generated)"
                )
            check_rater(rater)
        try:
            return super().start()
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port} ({err}); pick another --port"
            ) from None

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:40123/``."""
        base = self.base_url.removesuffix("/v1") + "/"
        if self.host in ("0.0.0.0", "::", ""):
            port = base.rsplit(":", 1)[1]
            return f"http://{socket.gethostname()}:{port}"
        return base

    def url_for(self, rater: str) -> str:
        """The page's address for one rater, token included (in the fragment, never sent
        in requests or logged by proxies)."""
        for token, name in self.tokens.items():
            if name == rater:
                return f"{self.url}#token={token}"
        return self.url

    # -- API (called from request threads) --------------------------------------------------
    def rater_of(self, authorization: str | None) -> str:
        if not self.tokens:
            return self.session.rater
        scheme, _, given = (authorization or "").partition(" ")
        given = given.strip()
        if scheme.lower() == "bearer" and given:
            for token, rater in self.tokens.items():
                if hmac.compare_digest(token.encode("utf-8"), given.encode("utf-8")):
                    return rater
        raise Unauthorized("open the link with your rater token (Authorization: Bearer ...)")

    def state(self, query: dict[str, list[str]], rater: str) -> dict[str, Any]:
        order = (query.get("order") or ["file"])[0]
        if order not in ORDERS:
            raise BadRequest(f"order {order!r} is not one of {', '.join(ORDERS)}")
        chosen: Order = order  # type: ignore[assignment]
        return self.session.state(chosen, rater).model_dump(mode="json")

    def item(self, raw_id: str, rater: str) -> dict[str, Any]:
        return self.session.view(unquote(raw_id), rater).model_dump(mode="json")

    @staticmethod
    def _label_body(body: Any) -> tuple[str, str, object, str]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object {item, dimension, score}")
        for key in ("item", "dimension"):
            if not isinstance(body.get(key), str) or not body[key]:
                raise BadRequest(f"give {key!r} as a non-empty string")
        if "score" not in body:
            raise BadRequest("give 'score' (a level of the dimension's scale)")
        rationale = body.get("rationale")
        if rationale is None:
            rationale = ""
        if not isinstance(rationale, str):
            raise BadRequest("give 'rationale' as a string")
        unknown = set(body) - {"item", "dimension", "score", "rationale"}
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}")
        return body["item"], body["dimension"], body["score"], rationale

    def save(self, body: Any, rater: str) -> dict[str, Any]:
        item, dimension, score, rationale = self._label_body(body)
        label = self.session.save(item, dimension, score, rationale, rater=rater)
        return label.model_dump(mode="json")

    def agreement(self, dimension: str) -> dict[str, Any]:
        return self.session.agreement(unquote(dimension)).model_dump(mode="json")

    def adjudicate(self, body: Any, rater: str) -> dict[str, Any]:
        item, dimension, score, rationale = self._label_body(body)
        decision = self.session.adjudicate(item, dimension, score, rationale, rater)
        return decision.model_dump(mode="json")

    def history(self, query: dict[str, list[str]]) -> dict[str, Any]:
        item = query["item"][0] if query.get("item") else None
        changes = self.session.history(item)
        return {"changes": [c.model_dump(mode="json") for c in changes]}


class _Handler(JSONHandler):
    owner: LabellingServer
    max_body_bytes = MAX_BODY_BYTES
    # A client that sends fewer body bytes than it announced frees its thread after this.
    timeout = 30

    def _origin_ok(self) -> bool:
        if not self.owner.tokens:
            # A page on another site could reach 127.0.0.1 through DNS rebinding; its requests
            # carry that site's host name, so anything but a loopback name is refused.
            return self.loopback_host() and not self.foreign_origin()
        # With tokens the Host is whatever name the raters use; a browser's request from
        # another site carries that site's Origin, which must then match.
        origin = (self.headers.get("Origin") or "").strip().lower()
        if not origin:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        return origin.split("://", 1)[-1] == host

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (a bad request line, an oversized header) gets JSON like the rest."""
        # An unparseable request line leaves the HTTP/0.9 default: no status line would go out.
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        self.send_json(code, {"error": message or "bad request"}, {"Connection": "close"})

    def _fail(self, status: int, message: str) -> None:
        self.send_json(status, {"error": message}, {"Cache-Control": "no-store"})

    def _read_body(self) -> Any:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True  # its chunks stay unread
            raise BadRequest("send the body with a Content-Length, not Transfer-Encoding")
        try:
            return self.read_json()
        except BodyTooLarge:
            raise
        except (ValueError, RecursionError):
            self.close_connection = True  # a bad Content-Length leaves bytes unread
            raise BadRequest("the request body is not JSON") from None

    def _dispatch(self, method: str) -> None:
        if not self._origin_ok():
            self.close_connection = True  # its body, if any, stays unread
            host = (self.headers.get("Host") or "").strip().lower()
            self._fail(403, f"host {host!r} or origin refused; open the page at its own address")
            return
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        owner = self.owner
        body: Any = None
        if method != "POST" and (
            self.headers.get("Transfer-Encoding") or self.headers.get("Content-Length", "0") != "0"
        ):
            self.close_connection = True  # a body nobody reads must not reach the next request
        try:
            if method == "POST":
                # Read the body even when refusing it: unread bytes would poison the next
                # request on this keep-alive connection.
                body = self._read_body()
                # A JSON content type forces a CORS preflight, which this server never grants,
                # so pages on other sites cannot write labels.
                if not self.json_content_type():
                    raise BadRequest("send the label as Content-Type: application/json")
            if method == "GET" and path in ("/", "/index.html"):
                self._send_page()
                return
            if not path.startswith("/api/"):
                self._fail(404, f"no route {method} {path}")
                return
            rater = owner.rater_of(self.headers.get("Authorization"))
            no_store = {"Cache-Control": "no-store"}
            if method == "GET" and path == "/api/state":
                self.send_json(200, owner.state(query, rater), no_store)
            elif method == "GET" and path.startswith("/api/items/"):
                raw = path.removeprefix("/api/items/")
                self.send_json(200, owner.item(raw, rater), no_store)
            elif method == "POST" and path == "/api/labels":
                self.send_json(200, owner.save(body, rater), no_store)
            elif method == "GET" and path.startswith("/api/agreement/"):
                raw = path.removeprefix("/api/agreement/")
                self.send_json(200, owner.agreement(raw), no_store)
            elif method == "POST" and path == "/api/adjudications":
                self.send_json(200, owner.adjudicate(body, rater), no_store)
            elif method == "GET" and path == "/api/history":
                self.send_json(200, owner.history(query), no_store)
            else:
                self._fail(404, f"no route {method} {path}")
        except BodyTooLarge as err:
            self._fail(413, f"{err}; a label is a score and a justification")
        except Unauthorized as err:
            self._fail(401, str(err))
        except (BadRequest, JudgeAlignError) as err:
            self._fail(400, str(err))
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client stopped sending; nothing to answer
        except Exception as err:  # the page must outlive one bad request
            self._fail(500, f"{type(err).__name__}: {err}")

    def _send_page(self) -> None:
        data = page_html().encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Content-Security-Policy", content_security_policy(header=True))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")
