"""Safe defaults, as one ASGI middleware around the whole app.

- **Content-Security-Policy**: scripts, styles, images, fonts and connections from the app's own origin
  only (no inline script, no CDN); HTML reports get a policy without any script at all.
- **Host check**: without a token the app answers only to the host names it was started for (loopback
  by default), which defeats DNS rebinding.
- **Token** (``--token``): every request but ``/login``, ``/static`` and ``/api/health`` needs the token,
  as ``Authorization: Bearer <token>`` or the ``artlens_token`` cookie that ``/login`` sets
  (HttpOnly, SameSite=Strict).
- **CSRF**, two checks on a state-changing request (POST, PUT, PATCH, DELETE):

  1. it must come from the app's own origin: its ``Origin`` header, when present, must equal the app's, and
     ``Sec-Fetch-Site``, when present, must be ``same-origin`` or ``none``;
  2. a request from a browser must carry the form token (a signed double submit): every browser gets an
     ``artlens_session`` cookie (random, HttpOnly, SameSite=Strict) with its first HTML page, and every page
     carries ``csrf_token = HMAC-SHA256(server secret, session id)`` as a hidden ``csrf_token`` field in each
     form (the first field: the middleware reads it from the body before the route does) and in
     ``<meta name="csrf-token">`` for the app's own scripts, which send it as ``X-CSRF-Token``. A request is
     from a browser when it carries the session or login cookie, an ``Origin`` or a ``Sec-Fetch-Site``
     header. API clients (scripts, curl) send none of these: they hold no ambient credentials a foreign page
     could borrow (with ``--token`` they authenticate by ``Authorization: Bearer``, which a page cannot make
     a browser send), so they are not asked for the form token. A request authenticated by a valid bearer
     token is never asked for it either.
- **Upload cap**: a request body larger than ``--max-upload-mb`` gets 413, by its ``Content-Length`` at
  once, or as soon as a streamed body passes the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

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
SESSION_COOKIE = "artlens_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = b"x-csrf-token"
FORM_PREFIX_LIMIT = 64 * 2**10  # how much of a multipart body is read to find the token (it comes first)
URLENCODED_LIMIT = 2**20  # an url-encoded form is read whole to find the token
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


def server_secret(data_dir: Path) -> bytes:
    """The per-server secret that signs form tokens: ``DATA/secret.key`` (32 random bytes, mode 0600),
    made on first use, so that forms stay valid across restarts and servers sharing a data folder agree."""
    path = data_dir / "secret.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes()
        if len(secret) >= 32:
            return secret
        raise RuntimeError(f"{path}: the server secret is damaged (delete it to make a new one)") from None
    secret = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as fh:
        fh.write(secret)
    return secret


def csrf_token(secret: bytes, session: str) -> str:
    """The form token of a browser session: HMAC-SHA256 of the session id under the server secret."""
    return hmac.new(secret, session.encode(), hashlib.sha256).hexdigest()


def _valid_session(value: str | None) -> bool:
    return value is not None and 20 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value)


class SecurityMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, *, max_body: int, token: str | None, allowed_hosts: set[str],
                 secret: bytes | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.token = token
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.secret = secret if secret is not None else secrets.token_bytes(32)

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
        cookies = _cookies(scope)
        bearer = self.token is not None and self._bearer(scope)
        if self.token is not None and not path.startswith(OPEN_PATHS) and not (bearer or self._cookie_ok(cookies)):
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

        session = cookies.get(SESSION_COOKIE)
        new_session = None if _valid_session(session) else secrets.token_urlsafe(24)
        expected = csrf_token(self.secret, new_session or session or "")
        scope.setdefault("state", {})["csrf_token"] = expected

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

        if method in UNSAFE_METHODS and not bearer and self._from_browser(scope, cookies):
            try:
                given, receive_next = await self._form_token(scope, counted_receive)
            except BodyTooLarge:
                await deny(413, f"the upload is larger than the limit of {self.max_body / 2**20:.3g} MB")
                return
            if new_session is not None or given is None or not hmac.compare_digest(given.encode(), expected.encode()):
                await deny(403, "this form has expired or did not come from a page of this artlens server "
                                "(its security token is missing or wrong): go back, reload the page and send it "
                                "again")
                return
        else:
            receive_next = counted_receive

        csp = REPORT_CSP if _is_report(path) else CSP
        session_cookie = (f"{SESSION_COOKIE}={new_session}; Path=/; HttpOnly; SameSite=Strict".encode()
                          if new_session is not None else None)

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
                if session_cookie is not None and any(k.lower() == b"content-type" and v.startswith(b"text/html")
                                                      for k, v in headers):
                    headers.append((b"set-cookie", session_cookie))  # pages get a session, API answers do not
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive_next, send_with_headers)

    def _bearer(self, scope: Scope) -> bool:
        assert self.token is not None
        auth = _header(scope, b"authorization") or ""
        return auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), self.token.encode())

    def _cookie_ok(self, cookies: dict[str, str]) -> bool:
        assert self.token is not None
        value = cookies.get(TOKEN_COOKIE)
        return value is not None and hmac.compare_digest(value.encode(), self.token.encode())

    @staticmethod
    def _from_browser(scope: Scope, cookies: dict[str, str]) -> bool:
        """A request a browser made: it carries one of the app's cookies or fetch metadata."""
        return (SESSION_COOKIE in cookies or TOKEN_COOKIE in cookies
                or _header(scope, b"origin") is not None or _header(scope, b"sec-fetch-site") is not None)

    @staticmethod
    async def _form_token(scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
        """The form token of the request (header, or the ``csrf_token`` field of an url-encoded or multipart
        body), and a ``receive`` that gives the app the whole body again, including what was read here."""
        header = _header(scope, CSRF_HEADER)
        if header is not None:
            return header.strip(), receive
        ctype = (_header(scope, b"content-type") or "").lower()
        if ctype.startswith("application/x-www-form-urlencoded"):
            limit, boundary = URLENCODED_LIMIT, None
        elif ctype.startswith("multipart/form-data"):
            limit, boundary = FORM_PREFIX_LIMIT, _boundary(_header(scope, b"content-type") or "")
            if boundary is None:
                return None, receive
        else:
            return None, receive
        messages: list[Message] = []
        body = b""
        token: str | None = None
        more = True
        while more and len(body) <= limit:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = bool(message.get("more_body", False))
            if boundary is not None:
                token, settled = _multipart_token(body, boundary)
                if settled:
                    break
        if boundary is None and not more:
            values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(CSRF_FIELD)
            token = values[0] if values else None

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        return token, replay

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


def _cookies(scope: Scope) -> dict[str, str]:
    raw = _header(scope, b"cookie")
    if not raw:
        return {}
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw)
    except Exception:
        return {}
    return {k: m.value for k, m in cookie.items()}


def _boundary(content_type: str) -> bytes | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    return None


def _multipart_token(body: bytes, boundary: bytes) -> tuple[str | None, bool]:
    """The ``csrf_token`` field among the complete leading parts of a multipart body read so far, and whether
    that settles it (found, or a file part or the end came first: the token must precede the files)."""
    delimiter = b"--" + boundary
    parts = body.split(delimiter)
    for k, part in enumerate(parts[1:], start=1):
        if part.startswith(b"--"):
            return None, True  # the closing delimiter
        complete = k < len(parts) - 1
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            return None, False
        disposition = head.decode("latin-1").lower()
        if "filename=" in disposition:
            return None, True
        if not complete:
            return None, False
        if f'name="{CSRF_FIELD}"' in disposition:
            return value.removesuffix(b"\r\n").decode("latin-1"), True
    return None, False


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
