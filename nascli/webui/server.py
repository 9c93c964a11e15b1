"""The web UI's HTTP server: the JSON API (``api``) and the page (``static/``), GET and HEAD only.

Who calls: ``nascli webui`` (``make_server`` then ``serve_forever``), tests and the benchmark
(port 0 for a free port, ``shutdown`` in a ``finally``). Guarantees: one thread per connection
(``ThreadingHTTPServer``, daemon threads, a socket timeout so idle connections end); a request
that fails, whatever the reason, gets one JSON error and the server goes on; every response
carries ``security.SECURITY_HEADERS``; static files are read once at start from the package, so
no request path reaches the file system; API bodies are never cached by the browser.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import mimetypes
import socket
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from nascli import __version__
from nascli.webui.api import ApiError, Encoded, Raw, WebApi, to_json
from nascli.webui.security import COOKIE, SECURITY_HEADERS, Access

__all__ = ["WebUIServer", "make_server", "STATIC_DIR"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Paths of the single page (the page's own router reads the path); everything else is 404.
_PAGE_PREFIXES = ("/experiments", "/oneshot", "/trials")
_GZIP_MIN = 16 * 1024
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
          ".md": "text/plain", ".svg": "image/svg+xml", ".png": "image/png"}  # fmt: skip


class WebUIServer(ThreadingHTTPServer):
    """Serves one ``WebApi`` and the static page under one ``Access`` rule."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: WebApi, access: Access, verbose: bool):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.api = api  # set first: a failed bind calls server_close() from the constructor
        self.access = access
        self.verbose = verbose
        self.static = _load_static(STATIC_DIR)
        super().__init__(address, Handler)

    def server_close(self) -> None:
        super().server_close()
        self.api.cache.close()

    @property
    def url(self) -> str:
        """The address to open (with the token on a non-loopback host)."""
        host, port = self.server_address[:2]
        if host in ("0.0.0.0", "::"):  # every interface: name one others can reach
            host = socket.gethostname()
        shown = f"[{host}]" if ":" in str(host) else str(host)
        query = f"/?{urlencode({'token': self.access.token})}" if self.access.token else "/"
        return f"http://{shown}:{port}{query}"


def make_server(
    host: str = "127.0.0.1",
    port: int = 8080,
    oneshot_roots: Sequence[Path] = (),
    *,
    token: str | None = None,
    verbose: bool = False,
) -> WebUIServer:
    """Bind (raises ``OSError`` if the port is taken); serve with ``serve_forever()``."""
    return WebUIServer((host, port), WebApi(oneshot_roots), Access(host, token), verbose)


class Handler(BaseHTTPRequestHandler):
    server: WebUIServer
    server_version = f"nascli-webui/{__version__}"
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection frees its thread

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def __getattr__(self, name: str) -> Any:
        # Any other method (POST, PUT, DELETE, OPTIONS, made-up ones): 405, not http.server's 501.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._send_json(
            HTTPStatus.METHOD_NOT_ALLOWED,
            {"error": f"{self.command} is not allowed: the web UI is read-only (GET, HEAD)"},
            head=False,
            extra={"Allow": "GET, HEAD"},
        )

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        if self.server.verbose:
            super().log_message(format, *args)

    # ------------------------------------------------------------------ dispatch

    def _answer(self, head: bool) -> None:
        try:
            self._dispatch(head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # the server must live whatever one request meets
            log.exception("webui: %s %s failed", self.command, self.path)
            try:
                self._send_json(500, {"error": "internal error (see the server's log)"}, head)
            except OSError:
                self.close_connection = True

    def _dispatch(self, head: bool) -> None:
        access = self.server.access
        if not access.host_allowed(self.headers.get("Host")):
            self._send_json(
                HTTPStatus.MISDIRECTED_REQUEST,
                {"error": "this server answers only requests addressed to a loopback host"},
                head,
            )
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        if access.token is not None and not self._authorised(url.path, query, head):
            return
        path = url.path
        if path.startswith("/api/") or path == "/api":
            self._api(path, query, head)
        elif path.startswith("/static/"):
            self._static(path[len("/static/") :], head)
        elif path == "/" or path.startswith(_PAGE_PREFIXES):
            self._static("index.html", head)
        elif path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon", head)
        else:
            self._send_json(404, {"error": f"no page {path[:200]!r}"}, head)

    def _authorised(self, path: str, query: dict[str, list[str]], head: bool) -> bool:
        access = self.server.access
        given = query.get("token", [None])[-1]
        if given is not None and access.token_ok(given):
            rest = {k: v for k, v in query.items() if k != "token"}
            target = path + (f"?{urlencode(rest, doseq=True)}" if rest else "")
            cookie = f"{COOKIE}={access.token}; Path=/; HttpOnly; SameSite=Strict"
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", head,
                       {"Location": target, "Set-Cookie": cookie})  # fmt: skip
            return False
        carried = access.from_request(self.headers.get("Cookie"), self.headers.get("Authorization"))
        if access.token_ok(carried):
            return True
        self._send_json(
            HTTPStatus.UNAUTHORIZED,
            {"error": "a token is needed: open the URL `nascli webui` printed (…/?token=…)"},
            head,
        )
        return False

    def _api(self, path: str, query: dict[str, list[str]], head: bool) -> None:
        try:
            body = self.server.api.get(path, query)
        except ApiError as exc:
            self._send_json(exc.status, {"error": str(exc), "status": exc.status}, head)
            return
        if isinstance(body, Raw):
            disposition = f'attachment; filename="{body.filename}"'
            self._send(200, body.text.encode(), body.content_type, head,
                       {"Content-Disposition": disposition})  # fmt: skip
            return
        if isinstance(body, Encoded):
            self._send(200, body.data, "application/json", head)
            return
        self._send_json(200, body, head)

    def _static(self, name: str, head: bool) -> None:
        entry = self.server.static.get(name)
        if entry is None:
            self._send_json(404, {"error": f"no static file {name[:200]!r}"}, head)
            return
        data, content_type, etag = entry
        if self.headers.get("If-None-Match") == etag:
            self._send(HTTPStatus.NOT_MODIFIED, b"", content_type, head, {"ETag": etag},
                       cache="no-cache")  # fmt: skip
            return
        self._send(200, data, content_type, head, {"ETag": etag}, cache="no-cache")

    # ------------------------------------------------------------------ sending

    def _send_json(
        self, status: int, body: Any, head: bool, extra: dict[str, str] | None = None
    ) -> None:
        self._send(status, to_json(body), "application/json", head, extra)

    def _send(
        self,
        status: int,
        data: bytes,
        content_type: str,
        head: bool,
        extra: dict[str, str] | None = None,
        cache: str = "no-store",
    ) -> None:
        headers = dict(extra or {})
        if len(data) >= _GZIP_MIN and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            data = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", cache)
        self.send_header("Vary", "Accept-Encoding")
        for key, value in {**SECURITY_HEADERS, **headers}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and status not in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):
            self.wfile.write(data)


def _load_static(root: Path) -> dict[str, tuple[bytes, str, str]]:
    """Every file under ``root`` by its relative name: (bytes, content type, ETag)."""
    files = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
        if path.name.endswith("LICENSE"):
            kind = "text/plain"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        files[path.relative_to(root).as_posix()] = (data, kind, etag)
    return files
