"""The polite client (``artlens/collect/http.py``) against the local replay server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from artlens.collect.http import (
    ContentError,
    HTTPStatusError,
    PoliteClient,
    RobotsDisallowedError,
    default_user_agent,
    parse_retry_after,
)
from artlens.collect.testing import ReplayServer, ReplaySite
from artlens.errors import InvalidParameterError, NetworkError

OBJ = "/public/collection/v1/objects/436535"


class Sleeps:
    """Records the waits the client asks for (and really waits, so the server sees the spacing)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, s: float) -> None:
        self.waits.append(s)
        time.sleep(s)


def client(**kw: object) -> PoliteClient:
    kw.setdefault("rate", 500)
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("jitter", False)
    return PoliteClient(**kw)  # type: ignore[arg-type]


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    # an HTTP date 10 s after `now` (Wed, 21 Oct 2015 07:28:00 GMT = 1445412480)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_user_agent_and_json(server: ReplayServer, site: ReplaySite) -> None:
    c = client()
    obj = c.get_json(server.base_url + OBJ)
    assert obj["title"] == "Wheat Field with Cypresses"
    assert obj["primaryImage"].startswith(server.base_url)  # {BASE} replaced
    ua = site.requests[-1][2]
    assert ua == default_user_agent() and ua.startswith("artlens/") and "(+" in ua


def test_rate_limit_spaces_requests_per_host(server: ReplayServer, site: ReplaySite) -> None:
    c = client(rate=20)  # 50 ms apart
    for _ in range(5):
        c.get(server.base_url + OBJ)
    times = [t for t, _, _ in site.requests]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # the client spaces request starts 1/rate apart; arrival times at the server jitter by a few ms
    assert min(gaps) >= 0.04 and sum(gaps) >= 0.9 * 4 * 0.05, gaps


def test_one_request_in_flight_per_host(server: ReplayServer, site: ReplaySite) -> None:
    """Four threads share one client: the host still sees one request at a time, 1/rate apart."""
    site.fault(OBJ, "slow", times=None, retry_after="0.05")
    c = client(rate=100)
    threads = [threading.Thread(target=c.get, args=(server.base_url + OBJ,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = sorted(t for t, _, _ in site.requests)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 4 and min(gaps) >= 0.04, gaps  # each waits for the previous 50 ms answer


def test_500_then_ok_with_deterministic_backoff(server: ReplayServer, site: ReplaySite) -> None:
    site.fault(OBJ, "500", times=2)
    sleeps = Sleeps()
    c = client(rate=1000, backoff_s=0.02, sleep=sleeps)
    assert c.get_json(server.base_url + OBJ)["objectID"] == 436535
    assert c.stats.retries == 2
    backoffs = [w for w in sleeps.waits if w >= 0.015]
    assert backoffs == pytest.approx([0.02, 0.04], abs=0.003)  # backoff * 2**attempt, no jitter


def test_retries_exhausted(server: ReplayServer, site: ReplaySite) -> None:
    site.fault(OBJ, "502", times=None)
    with pytest.raises(HTTPStatusError) as exc:
        client(retries=2).get(server.base_url + OBJ)
    assert exc.value.status == 502 and "HTTP 502" in str(exc.value)
    assert len(site.requests) == 3


def test_429_retry_after_is_honoured(server: ReplayServer, site: ReplaySite) -> None:
    site.fault(OBJ, "429", times=1, retry_after="1")
    sleeps = Sleeps()
    t0 = time.monotonic()
    client(sleep=sleeps).get(server.base_url + OBJ)
    assert time.monotonic() - t0 >= 0.95
    assert max(sleeps.waits) == pytest.approx(1.0, abs=0.05)
    (t1, _, _), (t2, _, _) = site.requests
    assert t2 - t1 >= 0.95


def test_retry_after_too_long_fails_cleanly(server: ReplayServer, site: ReplaySite) -> None:
    site.fault(OBJ, "503", times=1, retry_after="3600")
    with pytest.raises(NetworkError, match="asks to wait 3600 s"):
        client().get(server.base_url + OBJ)


def test_404_is_not_retried(server: ReplayServer, site: ReplaySite) -> None:
    with pytest.raises(HTTPStatusError) as exc:
        client().get(server.base_url + "/public/collection/v1/objects/1")
    assert exc.value.status == 404 and len(site.requests) == 1


def test_connection_reset_is_retried(server: ReplayServer, site: ReplaySite) -> None:
    site.fault(OBJ, "reset", times=1)
    assert client().get_json(server.base_url + OBJ)["objectID"] == 436535
    assert len(site.requests) == 2


def test_timeout_then_clear_error(server: ReplayServer, site: ReplaySite) -> None:
    site.fault(OBJ, "slow", times=None, retry_after="1.0")
    with pytest.raises(NetworkError, match=r"cannot fetch .*timed out \(after 2 attempts\)"):
        client(timeout_s=0.2, retries=1).get(server.base_url + OBJ)


def test_connection_refused() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    with pytest.raises(NetworkError, match="cannot fetch"):
        client(retries=1).get(f"http://127.0.0.1:{port}/x")


@pytest.mark.parametrize(("kind", "message"), [("html", "expected JSON .* but got an HTML page"),
                                               ("malformed", "malformed JSON from")])
def test_html_or_malformed_where_json_expected(server: ReplayServer, site: ReplaySite, kind: str,
                                               message: str) -> None:
    site.fault(OBJ, kind)
    with pytest.raises(ContentError, match=message):
        client().get_json(server.base_url + OBJ)


def test_download_size_limit(server: ReplayServer, tmp_path: Path) -> None:
    dest = tmp_path / "x.part"
    with pytest.raises(ContentError, match="more than the limit"):
        client().download(server.base_url + "/img/a.jpg", dest, max_bytes=100)
    assert not dest.exists()
    dl = client().download(server.base_url + "/img/a.jpg", dest)
    assert dl.nbytes == dest.stat().st_size > 100 and dl.content_type == "image/jpeg" and len(dl.sha256) == 64


def test_robots_txt(server: ReplayServer, site: ReplaySite) -> None:
    site.robots_txt = "User-agent: *\nDisallow: /en/App/\nCrawl-delay: 0.2\n"
    c = client(respect_robots=True)
    with pytest.raises(RobotsDisallowedError, match="disallows"):
        c.get(server.base_url + "/en/App/Painting/ImageJson/211727")
    c.get(server.base_url + "/en/paintings-by-style/impressionism?json=2")
    c.get(server.base_url + "/en/paintings-by-style/impressionism?json=2&page=2")
    paths = [p for _, p, _ in site.requests]
    assert paths.count("/robots.txt") == 1 and not any("ImageJson" in p for p in paths)
    t = [t for t, p, _ in site.requests if "paintings-by-style" in p]
    assert t[1] - t[0] >= 0.19  # Crawl-delay longer than 1/rate is obeyed


def test_robots_missing_means_allowed(tmp_path: Path) -> None:
    site = ReplaySite()
    site.fault("/robots.txt", "404", times=None)
    with ReplayServer(site) as srv:
        client(respect_robots=True).get(srv.base_url + "/img/x.jpg")


def test_bad_parameters() -> None:
    with pytest.raises(InvalidParameterError, match="rate must be > 0") as err:  # the CLI: --rate
        PoliteClient(rate=0)
    assert err.value.param == "rate"
    with pytest.raises(InvalidParameterError, match="retries must be >= 0") as err:  # the CLI: --retries
        PoliteClient(retries=-1)
    assert err.value.param == "retries"
