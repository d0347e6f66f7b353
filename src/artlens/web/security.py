"""Safe defaults, as one ASGI middleware around the whole app.

- **Content-Security-Policy**: scripts, styles, images, fonts and connections from the app's own origin
  only (no inline script, no CDN); HTML reports get a policy without any script at all.
- **Host check**: without a token the app answers only to the host names it was started for (loopback
  by default), which defeats DNS rebinding.
- **Token** (``--token``): every request but ``/login``, ``/static`` and ``/api/health`` needs the token,
  as ``Authorization: Bearer <token>`` or the ``artlens_token`` cookie that ``/login`` sets
  (HttpOnly, SameSite=Strict).
- **CSRF**: a state-changing request (POST, PUT, PATCH, DELETE) from a browser must come from the app's own
  origin: its ``Origin`` header, when present, must equal the app's, and ``Sec-Fetch-Site``, when present,
  must be ``same-origin`` or ``none``. Clients that are not browsers send neither and are not CSRF vectors.
- **Upload cap**: a request body larger than ``--max-upload-mb`` gets 413, by its ``Content-Length`` at
  once, or as soon as a streamed body passes the limit.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; font-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'")
REPORT_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; font-src 'self'; "
              "base-uri 'none'; frame-ancestors 'self'; form-action 'none'")
TOKEN_COOKIE = "artlens_token"
OPEN_PATHS = ("/login", "/static/", "/api/health", "/favicon.ico")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


class BodyTooLarge(Exception):
    """The request body passed the upload limit while it streamed in."""


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return None


def _host_name(host: str) -> str:
    """``127.0.0.1:8000`` → ``127.0.0.1``; ``[::1]:8000`` → ``::1``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class SecurityMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body: int, token: str | None, allowed_hosts: set[str]) -> None:
        self.app = app
        self.max_body = max_body
        self.token = token
        self.allowed_hosts = {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        wants_json = path.startswith("/api/") or "application/json" in (_header(scope, b"accept") or "")
        host = (_header(scope, b"host") or "").lower()

        async def deny(status: int, message: str, location: str | None = None) -> None:
            await _plain(send, status, message, wants_json, location)

        if self.token is None and _host_name(host) not in self.allowed_hosts:
            await deny(400, f"this artlens server answers only to {', '.join(sorted(self.allowed_hosts))} "
                            "(start it with --host and --token to serve a network)")
            return
        if self.token is not None and not path.startswith(OPEN_PATHS) and not self._authorised(scope):
            if wants_json or method != "GET":
                await deny(401, "this artlens server needs its access token (log in at /login, or send "
                                "'Authorization: Bearer <token>')")
            else:
                await deny(303, "log in first", location="/login?next=" + quote(path))
            return
        if method in UNSAFE_METHODS and not self._same_origin(scope, host):
            await deny(403, "cross-site request refused (it must come from a page of this artlens server)")
            return
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await deny(413, f"the upload is larger than the limit of {self.max_body / 2**20:.3g} MB "
                            "(serve with a larger --max-upload-mb to accept it)")
            return

        received, too_large, replaced = 0, False, False

        async def counted_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    too_large = True
                    raise BodyTooLarge()
            return message

        csp = REPORT_CSP if _is_report(path) else CSP

        async def send_with_headers(message: Message) -> None:
            nonlocal replaced
            if too_large:  # whatever the app made of the cut-off body, the answer is 413
                if not replaced:
                    replaced = True
                    await deny(413, f"the upload is larger than the limit of {self.max_body / 2**20:.3g} MB")
                return
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"content-security-policy", csp.encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"),
                            (b"cross-origin-resource-policy", b"same-origin")]
                message["headers"] = headers
            await send(message)

        await self.app(scope, counted_receive, send_with_headers)

    def _authorised(self, scope: Scope) -> bool:
        assert self.token is not None
        auth = _header(scope, b"authorization") or ""
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode()):
            return True
        cookie = SimpleCookie()
        try:
            cookie.load(_header(scope, b"cookie") or "")
        except Exception:
            return False
        value = cookie.get(TOKEN_COOKIE)
        return value is not None and hmac.compare_digest(value.value.encode(), self.token.encode())

    @staticmethod
    def _same_origin(scope: Scope, host: str) -> bool:
        site = _header(scope, b"sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return False
        origin = _header(scope, b"origin")
        if origin is None:
            return True
        scheme = scope.get("scheme", "http")
        return origin.lower() == f"{scheme}://{host}"


def _is_report(path: str) -> bool:
    return path.startswith(("/analyses/", "/jobs/")) and "/files/" in path


async def _plain(send: Send, status: int, message: str, as_json: bool, location: str | None = None) -> None:
    if as_json:
        body = json.dumps({"detail": message}).encode()
        ctype = b"application/json"
    else:
        body = (f"<!doctype html><meta charset=utf-8><title>artlens: {status}</title>"
                f"<p>{_escape(message)}</p><p><a href=\"/\">back to the collection</a></p>").encode()
        ctype = b"text/html; charset=utf-8"
    headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
               (b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff")]
    if location is not None:
        headers.append((b"location", location.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
