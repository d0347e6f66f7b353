"""A polite HTTP client for collectors: standard library only (``urllib.request``).

Politeness, per host:

- at most ``rate`` requests per second (default 1): a request starts at least ``1 / rate`` seconds
  after the previous one to the host *finished*, and never more than one is in flight (a per-host
  lock is held for the whole request, body included);
- ``Retry-After`` honoured on 429 and 503 (seconds or an HTTP date), up to ``max_retry_after_s``;
- retries with exponential backoff on other 5xx answers and on connection errors / timeouts:
  ``backoff_s * 2**attempt`` seconds, plus a random jitter of up to ``backoff_s`` unless
  ``jitter=False`` (deterministic, for tests);
- a descriptive ``User-Agent``: ``artlens/<version> (+<contact>)``;
- optionally (``respect_robots=True``, used for HTML sources such as WikiArt) robots.txt is read once
  per host and disallowed URLs are refused; a ``Crawl-delay`` longer than ``1 / rate`` is obeyed.

Every failure that survives the retries is a :class:`~artlens.errors.NetworkError` (exit code 9),
with one line that names the URL; :class:`HTTPStatusError` carries the status code.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import urllib.robotparser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from artlens import __version__
from artlens.errors import InvalidParameterError, NetworkError

DEFAULT_CONTACT = "https://github.com/artlens/artlens"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_CHUNK = 1 << 16


def default_user_agent(contact: str | None = None) -> str:
    """``artlens/<version> (+<contact>)``; ``contact`` defaults to ``$ARTLENS_CONTACT`` or the project page."""
    contact = contact or os.environ.get("ARTLENS_CONTACT", "").strip() or DEFAULT_CONTACT
    return f"artlens/{__version__} (+{contact})"


class HTTPStatusError(NetworkError):
    """The server answered with an error status (after the retries, for retryable ones)."""

    def __init__(self, url: str, status: int, reason: str = "") -> None:
        self.url, self.status = url, status
        super().__init__(f"HTTP {status}{' ' + reason if reason else ''} from {url}")


class RobotsDisallowedError(NetworkError):
    """robots.txt of the host disallows the URL for our User-Agent."""


class ContentError(NetworkError):
    """The body is not what was asked for: HTML or malformed JSON where JSON was expected, or too large."""


@dataclass
class Response:
    """A finished response: status, headers (lower-case names), body bytes and the final URL."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Download:
    """A body streamed to a file: its size, SHA-256 and content type."""

    url: str
    path: Path
    nbytes: int
    sha256: str
    content_type: str


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    slept_s: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent/invalid.

    >>> parse_retry_after("3")
    3.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0 - 10)
    10.0
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def crawl_delay(lines: list[str], user_agent: str) -> float | None:
    """The ``Crawl-delay`` (seconds, fractions allowed) of the robots.txt group for ``user_agent``, else of ``*``.

    >>> crawl_delay(["User-agent: *", "Crawl-delay: 2.5"], "artlens/0.1")
    2.5
    """
    product = user_agent.split("/")[0].lower()
    found: dict[str, float] = {}
    agents: list[str] = []
    in_rules = False
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value.lower())
        else:
            in_rules = True
            if key == "crawl-delay":
                try:
                    delay = float(value)
                except ValueError:
                    continue
                for agent in agents:
                    found.setdefault(agent, delay)
    for agent, delay in found.items():
        if agent != "*" and agent in product:
            return delay
    return found.get("*")


def _host(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def with_params(url: str, params: Mapping[str, Any] | None) -> str:
    """``url`` with ``params`` (``None`` values dropped) appended to its query string."""
    if not params:
        return url
    query = urllib.parse.urlencode([(k, v) for k, v in params.items() if v is not None])
    if not query:
        return url
    return url + ("&" if urllib.parse.urlsplit(url).query else "?") + query


def _looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml"))


class _NoRedirectErrors(urllib.request.HTTPErrorProcessor):
    """Hand every status back as a response instead of raising, so one code path reads them all."""

    def http_response(self, request, response):  # noqa: ANN001, ANN201
        return response

    https_response = http_response


class PoliteClient:
    """HTTP GETs that respect the per-host politeness rules above.

    Args:
        rate: requests per second per host (> 0). Default 1.
        timeout_s: socket timeout for connecting and for each read.
        retries: extra attempts after a retryable failure (429/5xx/connection error/timeout).
        backoff_s: base of the exponential backoff, seconds.
        jitter: add a random ``[0, backoff_s)`` to each backoff; ``False`` makes the waits deterministic.
        max_retry_after_s: a ``Retry-After`` longer than this is not waited for: the request fails.
        user_agent: the ``User-Agent`` header; default :func:`default_user_agent`.
        respect_robots: read robots.txt of each host and refuse disallowed URLs.
        headers: extra headers sent with every request (e.g. an API token).
        sleep, clock: injectable for tests.
    """

    def __init__(
        self,
        rate: float = 1.0,
        timeout_s: float = 30.0,
        retries: int = 4,
        backoff_s: float = 1.0,
        jitter: bool = True,
        max_retry_after_s: float = 300.0,
        user_agent: str | None = None,
        respect_robots: bool = False,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0:
            raise InvalidParameterError(f"rate must be > 0 requests/s, got {rate}", param="rate")
        if retries < 0:
            raise InvalidParameterError(f"retries must be >= 0, got {retries}", param="retries")
        if not timeout_s > 0:
            raise InvalidParameterError(f"timeout_s must be > 0 s, got {timeout_s}", param="timeout_s")
        self.rate = float(rate)
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.jitter = jitter
        self.max_retry_after_s = float(max_retry_after_s)
        self.user_agent = user_agent or default_user_agent()
        self.respect_robots = respect_robots
        self.headers = dict(headers or {})
        self._sleep, self._clock = sleep, clock
        self._opener = urllib.request.build_opener(_NoRedirectErrors())
        self._guard = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._next_ok: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self.stats = ClientStats()

    # -- politeness ------------------------------------------------------------------------------------
    def _lock_for(self, host: str) -> threading.Lock:
        with self._guard:
            return self._host_locks.setdefault(host, threading.Lock())

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.stats.slept_s += seconds
            self._sleep(seconds)

    def _wait_turn(self, host: str) -> None:
        """Called with the host lock held: sleep until the host's next slot."""
        now = self._clock()
        self._wait(self._next_ok.get(host, now) - now)

    def _book_next(self, host: str, extra_wait: float = 0.0) -> None:
        """Called with the host lock held when a request has finished: the next may start 1/rate later
        (counted from the end, so the server never sees two requests closer than that, whatever the latency)."""
        ready = self._clock() + max(self._interval.get(host, 1.0 / self.rate), extra_wait)
        self._next_ok[host] = max(self._next_ok.get(host, 0.0), ready)

    def _backoff(self, attempt: int) -> float:
        delay = self.backoff_s * (2**attempt)
        if self.jitter:
            delay += random.uniform(0.0, self.backoff_s)
        return delay

    def _check_robots(self, url: str) -> None:
        host = _host(url)
        if host not in self._robots:
            self._robots[host] = None  # while fetching robots.txt itself
            self._robots[host] = self._load_robots(host)
        parser = self._robots[host]
        if parser is not None and not parser.can_fetch(self.user_agent, url):
            raise RobotsDisallowedError(f"robots.txt of {host} disallows {url} for {self.user_agent}")

    def _load_robots(self, host: str) -> urllib.robotparser.RobotFileParser:
        parser = urllib.robotparser.RobotFileParser(host + "/robots.txt")
        try:
            resp = self._get(host + "/robots.txt", {}, check_robots=False)
        except HTTPStatusError as exc:
            # RFC 9309: 4xx = no rules; 5xx after retries = assume complete disallow
            if 400 <= exc.status < 500:
                parser.parse([])
                return parser
            raise NetworkError(f"robots.txt of {host} unavailable (HTTP {exc.status}); not crawling it") from None
        lines = resp.body.decode("utf-8", "replace").splitlines()
        parser.parse(lines)
        delay = crawl_delay(lines, self.user_agent)
        if delay is not None and delay > 1.0 / self.rate:
            self._interval[host] = delay
        return parser

    # -- requests ---------------------------------------------------------------------------------------
    def _open(self, url: str, headers: Mapping[str, str]) -> http.client.HTTPResponse:
        req = urllib.request.Request(url, headers={"User-Agent": self.user_agent, **self.headers, **headers})
        return self._opener.open(req, timeout=self.timeout_s)

    def _request(
        self, url: str, headers: Mapping[str, str], consume: Callable[[http.client.HTTPResponse], Any],
        check_robots: bool = True,
    ) -> tuple[http.client.HTTPResponse, Any]:
        """One logical GET with retries; ``consume`` reads the body of a 2xx answer."""
        if self.respect_robots and check_robots:
            self._check_robots(url)
        host = _host(url)
        lock = self._lock_for(host)
        attempt = 0
        while True:
            wait_after = 0.0
            with lock:
                self._wait_turn(host)
                self.stats.requests += 1
                try:
                    resp = self._open(url, headers)
                    status = resp.status
                    self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
                    if 200 <= status < 300:
                        try:
                            return resp, consume(resp)
                        finally:
                            resp.close()
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                    resp.read(_CHUNK)  # drain a little so the connection closes cleanly
                    resp.close()
                    if status not in RETRY_STATUSES or attempt >= self.retries:
                        raise HTTPStatusError(url, status, resp.reason or "")
                    if status in (429, 503) and retry_after is not None:
                        if retry_after > self.max_retry_after_s:
                            raise NetworkError(f"{url}: server asks to wait {retry_after:g} s (Retry-After), "
                                               f"more than {self.max_retry_after_s:g} s; try again later")
                        wait_after = max(retry_after, self._backoff(0) if status == 503 else 0.0)
                    else:
                        wait_after = self._backoff(attempt)
                except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                    if attempt >= self.retries:
                        reason = getattr(exc, "reason", None) or exc
                        raise NetworkError(f"cannot fetch {url}: {reason} "
                                           f"(after {attempt + 1} attempt{'s' if attempt else ''})") from None
                    wait_after = self._backoff(attempt)
                finally:
                    # book the next slot (and any retry wait) on the host, so no other request slips in before it
                    self._book_next(host, wait_after)
            attempt += 1
            self.stats.retries += 1

    def _get(self, url: str, params: Mapping[str, Any] | None, headers: Mapping[str, str] | None = None,
             check_robots: bool = True, max_bytes: int = 64 << 20) -> Response:
        full = with_params(url, params)

        def read(resp: http.client.HTTPResponse) -> bytes:
            body = resp.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise ContentError(f"{full}: response larger than {max_bytes} bytes")
            return body

        resp, body = self._request(full, headers or {}, read, check_robots=check_robots)
        return Response(resp.url or full, resp.status, {k.lower(): v for k, v in resp.headers.items()}, body)

    def get(self, url: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None,
            max_bytes: int = 64 << 20) -> Response:
        """GET ``url`` (with ``params``); a non-2xx answer after the retries raises :class:`HTTPStatusError`."""
        return self._get(url, params, headers, max_bytes=max_bytes)

    def get_json(self, url: str, params: Mapping[str, Any] | None = None,
                 headers: Mapping[str, str] | None = None) -> Any:
        """GET and decode JSON; HTML or malformed JSON raises :class:`ContentError` with one line."""
        resp = self.get(url, params, {"Accept": "application/json", **(headers or {})})
        if resp.content_type == "text/html" or _looks_like_html(resp.body):
            raise ContentError(f"expected JSON from {resp.url} but got an HTML page "
                               f"({resp.content_type or 'no content type'}, {len(resp.body)} bytes)")
        try:
            return json.loads(resp.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContentError(f"malformed JSON from {resp.url}: {exc}") from None

    def download(self, url: str, dest: str | os.PathLike[str], max_bytes: int = 50 << 20) -> Download:
        """Stream ``url`` into ``dest`` (overwritten), hashing as it goes; more than ``max_bytes`` raises
        :class:`ContentError` and removes ``dest``."""
        dest = Path(dest)

        def stream(resp: http.client.HTTPResponse) -> tuple[int, str]:
            digest, n = hashlib.sha256(), 0
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise ContentError(f"{url}: {int(length)} bytes, more than the limit of {max_bytes}")
            with open(dest, "wb") as fh:
                while block := resp.read(_CHUNK):
                    n += len(block)
                    if n > max_bytes:
                        raise ContentError(f"{url}: more than the limit of {max_bytes} bytes")
                    digest.update(block)
                    fh.write(block)
            return n, digest.hexdigest()

        try:
            resp, (n, sha) = self._request(url, {}, stream)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return Download(url, dest, n, sha, ctype)
