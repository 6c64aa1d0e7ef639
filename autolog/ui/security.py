"""Who may read the store through the app: the bind rule, the token, the Host check, and the headers
every response carries.

- Loopback only by default. Listening on any other address needs a token (server.py refuses to start
  without one).
- With a token, every request carries it: `Authorization: Bearer <token>`, or `?token=<token>` once, which
  sets the cookie `autolog_ui_token` (HttpOnly, SameSite=Strict) and, for a page, redirects to the same
  URL without it (so the token stays out of the history and of the address bar). The cookie holds an
  HMAC of the token, not the token. Every comparison is hmac.compare_digest.
- Without a token (loopback), the Host header must name this machine's loopback: a web page elsewhere
  that points its own host name at 127.0.0.1 (DNS rebinding) cannot read the API through the browser.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl, urlencode

from .http import error_json, error_page

COOKIE = "autolog_ui_token"
TOKEN_ENV = "AUTOLOG_UI_TOKEN"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
            (b"x-frame-options", b"DENY")]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether host names this machine only (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_value(token: str) -> str:
    """What the cookie holds: an HMAC of the token (a cookie read off a disk does not give the token)."""
    return hmac.new(token.encode(), b"autolog-ui-cookie", hashlib.sha256).hexdigest()


class Guard:
    """ASGI middleware: the token and Host checks, then the app; security headers on every response."""

    def __init__(self, app: ASGIApp, token: str | None, loopback_only: bool):
        self.app = app
        self.token = token
        self.cookie = cookie_value(token) if token else None
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send, [])
        if self.loopback_only and not is_loopback(_host(scope)):
            await _refuse(scope, receive, send, 400, "This server answers only requests addressed to this machine's "
                                                     "loopback (127.0.0.1 or localhost).")
            return
        if self.token is None:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if self._bearer_ok(headers) or self._cookie_ok(headers):
            await self.app(scope, receive, send)
            return
        params = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = [v for k, v in params if k == "token"]
        if given and hmac.compare_digest(given[-1].encode(), self.token.encode()):
            await self._accept_query_token(scope, receive, send, params)
            return
        await _refuse(scope, receive, send, 401, "A token is required: open the URL `autolog ui` printed (?token=...), "
                                                 "or send the header Authorization: Bearer <token>.")

    def _bearer_ok(self, headers: dict[str, str]) -> bool:
        scheme, _, given = headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token.encode())

    def _cookie_ok(self, headers: dict[str, str]) -> bool:
        jar = SimpleCookie()
        try:
            jar.load(headers.get("cookie", ""))
        except Exception:  # noqa: BLE001 - a malformed Cookie header is no cookie
            return False
        morsel = jar.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), self.cookie.encode())

    async def _accept_query_token(self, scope: Scope, receive: Receive, send: Send, params: list) -> None:
        cookie = f"{COOKIE}={self.cookie}; HttpOnly; SameSite=Strict; Path=/".encode()
        if scope["method"] in ("GET", "HEAD") and not scope["path"].startswith("/api/"):
            rest = urlencode([(k, v) for k, v in params if k != "token"])
            location = scope.get("root_path", "") + scope["path"] + (f"?{rest}" if rest else "")
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", location.encode("latin-1", "replace")), (b"set-cookie", cookie),
                                    (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, _with_headers(send, [(b"set-cookie", cookie)]))


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers", [])}
            added = [(k, v) for k, v in _HEADERS if k not in present] + extra
            message = {**message, "headers": [*message.get("headers", []), *added]}
        await send(message)
    return sending


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _host(scope: Scope) -> str:
    """The Host header's host (no port); the server's own address when there is none (HTTP/1.0)."""
    host = _headers(scope).get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 0)
        return str(server[0])
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    response = error_json(status, message) if scope["path"].startswith("/api/") else error_page(status, message)
    await response(scope, receive, send)
