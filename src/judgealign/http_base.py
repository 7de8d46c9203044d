"""Shared plumbing for judgealign's small loopback HTTP servers.

``judgealign.serve.ModelServer`` (the real OpenAI-compatible endpoint) and
``judgealign.testing.server.OpenAICompatServer`` (a scripted test double) both serve JSON with
the standard library from a background thread. This module holds what they share:

- ``LoopbackHTTPServer``: a ``ThreadingHTTPServer`` with daemon threads and a deep backlog;
- ``JSONHandler``: a quiet request handler with ``send_json``/``read_json`` helpers;
- ``LoopbackService``: start/close/context manager/``base_url`` around one such server.

>>> class Hello(JSONHandler):
...     def do_GET(self) -> None:
...         self.send_json(200, {"hello": self.owner.name})
>>> class HelloService(LoopbackService):
...     def __init__(self) -> None:
...         super().__init__(Hello)
...         self.name = "world"
>>> with HelloService() as svc:
...     import httpx
...     httpx.get(svc.base_url + "/anything").json()
{'hello': 'world'}
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")


class BodyTooLarge(ValueError):
    """A request body over the handler's ``max_body_bytes``."""


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` whose request threads never keep the process alive."""

    daemon_threads = True
    # The default listen backlog (5) resets connections when 32 clients connect at once.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up (its timeout fired, it was killed) is not the server's
        # error: only other failures get the standard library's traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class JSONHandler(BaseHTTPRequestHandler):
    """A request handler that answers JSON over keep-alive HTTP/1.1 and logs nothing.

    ``owner`` is the ``LoopbackService`` the request reached (set by ``LoopbackService.start``).

    >>> class Ping(JSONHandler):
    ...     def do_POST(self) -> None:
    ...         self.send_json(200, {"echo": self.read_json()}, {"X-Ping": "1"})
    """

    owner: Any
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the client's delayed ACK
    # adds ~40 ms to every response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return  # one line per request would flood test output and the serve console

    #: Larger request bodies are refused unread (a hostile client cannot exhaust memory).
    max_body_bytes: ClassVar[int] = 16 * 1024 * 1024

    def read_json(self) -> Any:
        """The request body parsed as JSON, ``{}`` when empty.

        Raises ``BodyTooLarge`` past ``max_body_bytes`` and ``ValueError`` when the body (or
        its Content-Length, e.g. a negative one) is not valid; either way the connection is
        marked to close, since unread bytes would poison the next request on it.
        """
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise ValueError("Content-Length is not a number") from None
        if length < 0:
            self.close_connection = True
            raise ValueError("Content-Length is negative")
        if length > self.max_body_bytes:
            self.close_connection = True
            raise BodyTooLarge(f"the body exceeds {self.max_body_bytes} bytes")
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    def loopback_host(self) -> bool:
        """The Host header names a loopback address. A web page can reach 127.0.0.1 through
        DNS rebinding, but its requests then carry its own site's host name."""
        host = (self.headers.get("Host") or "").strip().lower()
        name = host if host.endswith("]") else host.rsplit(":", 1)[0]
        return name in LOOPBACK_NAMES

    def foreign_origin(self) -> bool:
        """A browser sent this from a page that is not served by a loopback address."""
        origin = (self.headers.get("Origin") or "").strip().lower()
        if not origin or origin == "null":
            return bool(origin)
        rest = origin.split("://", 1)[-1]
        name = rest if rest.endswith("]") else rest.rsplit(":", 1)[0]
        return name not in LOOPBACK_NAMES

    def json_content_type(self) -> bool:
        """The body is labelled JSON: that forces a CORS preflight (never granted here), so
        a page on another site cannot send it as a 'simple' cross-site POST."""
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        return kind == "application/json"

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` with ``payload`` as a JSON body, plus any extra ``headers``."""
        self.send_bytes(status, json.dumps(payload).encode("utf-8"), headers)

    def send_bytes(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Answer ``status`` with ``data`` as-is, labelled JSON (test doubles send broken JSON)."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired); nothing to tell it


class LoopbackService:
    """One ``LoopbackHTTPServer`` serving ``handler`` from a background thread.

    ``port=0`` picks a free port. Subclasses extend ``start``/``close`` for their own resources
    and call ``super()``; each request's handler sees the service as ``self.owner``.

    >>> class Quiet(JSONHandler):
    ...     pass
    >>> svc = LoopbackService(Quiet).start()
    >>> svc.base_url.startswith("http://127.0.0.1:")
    True
    >>> svc.close()
    """

    #: ``serve_forever`` checks for shutdown this often, so ``close`` waits at most this long.
    poll_interval: ClassVar[float] = 0.05
    thread_name: ClassVar[str | None] = None

    def __init__(
        self, handler: type[JSONHandler], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._handler_class = handler
        self.host = host
        self.port = port
        self._httpd: LoopbackHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        # Kept after close so a test can still name the (now refusing) address.
        self._address: tuple[str, int] | None = None

    def start(self) -> Self:
        """Bind ``host:port`` and serve in a daemon thread; ``OSError`` if it cannot bind."""
        # A subclass per service, so handlers reach their owner without a global.
        bound = type(self._handler_class.__name__, (self._handler_class,), {"owner": self})
        self._httpd = LoopbackHTTPServer((self.host, self.port), bound)
        host, port = self._httpd.server_address[:2]
        self._address = (str(host), int(port))
        self._http_thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": self.poll_interval},
            name=self.thread_name,
            daemon=True,
        )
        self._http_thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the socket; safe to call twice or before ``start``."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None

    def block_until_interrupted(self) -> None:
        """Start (if needed) and block the calling thread until Ctrl-C, then close."""
        if self._httpd is None:
            self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """``http://host:port/v1`` (the OpenAI ``base_url``)."""
        if self._address is None:
            name = type(self).__name__
            raise RuntimeError(f"server not started; use `with {name}(...) as srv:`")
        host, port = self._address
        return f"http://{host}:{port}/v1"
