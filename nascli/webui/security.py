"""The web UI's security rules: who may read, and the headers every response carries.

- Bound to a loopback address (the default, 127.0.0.1), the server answers only requests whose
  ``Host`` header names a loopback host (a page on another site cannot reach it through DNS
  rebinding) and needs no token.
- Bound to any other address, every request needs the random token printed once at start: as
  ``?token=`` (the server then sets a cookie and redirects to the same URL without it), as the
  ``nascli_webui`` cookie, or as ``Authorization: Bearer TOKEN``; compared in constant time.
- Every response carries a Content Security Policy that allows only this server's own scripts,
  styles and connections (no inline script, no eval, no framing), ``nosniff`` and
  ``no-referrer``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import CookieError, SimpleCookie

__all__ = ["COOKIE", "SECURITY_HEADERS", "Access", "is_loopback"]

COOKIE = "nascli_webui"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is loopback."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    """The access rule of one server: ``token`` is None on loopback, else a fresh random one."""

    def __init__(self, bind_host: str, token: str | None = None):
        self.loopback = is_loopback(bind_host)
        self.token = None if self.loopback else (token or secrets.token_urlsafe(24))

    def host_allowed(self, host_header: str | None) -> bool:
        """On loopback, only requests addressed to a loopback name (DNS-rebinding guard)."""
        if not self.loopback:
            return True
        if not host_header:
            return False
        host = host_header.strip()
        if host.startswith("["):  # [::1]:8080
            host = host[1 : host.find("]")] if "]" in host else host
        elif host.count(":") == 1:
            host = host.rsplit(":", 1)[0]
        return is_loopback(host)

    def token_ok(self, given: str | None) -> bool:
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def from_request(self, cookie_header: str | None, authorization: str | None) -> str | None:
        """The token a request carries in its cookie or ``Authorization: Bearer`` header."""
        if authorization and authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        if cookie_header:
            try:
                jar = SimpleCookie(cookie_header)
            except CookieError:
                return None
            if COOKIE in jar:
                return jar[COOKIE].value
        return None
