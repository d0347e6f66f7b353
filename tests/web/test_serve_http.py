"""``artlens serve`` as users run it (a subprocess, uvicorn with the HTTP parser and event loop it picks):
cached tiles keep every security header, and the server runs httptools / uvloop when they are installed
(the ``web`` extra), the protocol stack BENCHMARKS.md measured."""

from __future__ import annotations

import http.client
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SECURITY_HEADERS = (
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "cross-origin-resource-policy",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen]]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "artlens.cli.main",
            "serve",
            "--catalog",
            str(tmp_path / "artlens.db"),
            "--port",
            str(port),
            "--workers",
            "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(port, "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"artlens serve did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.1)
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(15)


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


@pytest.mark.slow
def test_cached_tiles_from_the_real_server_keep_the_security_headers(served, plate_tif):
    import httpx

    port, proc = served
    base = f"http://127.0.0.1:{port}"
    up = httpx.post(
        base + "/api/images",
        files={"file": ("plate.tif", plate_tif.read_bytes())},
        data={"modality": "xray"},
        timeout=60,
    )
    assert up.status_code == 201, up.text
    image = up.json()["id"]
    top = httpx.get(f"{base}/api/images/{image}/tiles").json()["max_level"]
    url = f"/tiles/{image}_files/{top}/0_0.jpg"
    made = _get(port, url)  # made on demand by the app
    again = _get(port, url)  # answered by the tile cache
    not_modified = _get(port, url, {"If-None-Match": again[1]["etag"]})
    for status, headers, _ in (made, again, not_modified):
        assert all(h in headers for h in SECURITY_HEADERS), (status, headers)
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
    assert made[0] == again[0] == 200 and again[2] == made[2] and again[2].startswith(b"\xff\xd8")
    assert again[1]["etag"] == made[1]["etag"] and not_modified[0] == 304 and not_modified[2] == b""
    # the host check still answers before the cache: a cached tile is no way around it
    status, headers, body = _get(port, url, {"Host": "attacker.example"})
    assert status == 400 and b"answers only to" in body and "content-security-policy" in headers
    # the protocol stack: uvicorn picks httptools and uvloop when they are installed (the web extra)
    maps = Path(f"/proc/{proc.pid}/maps").read_text() if os.path.exists(f"/proc/{proc.pid}/maps") else None
    if maps is None:
        pytest.skip("no /proc: cannot see which HTTP parser the server loaded")
    for module in ("httptools", "uvloop"):
        if importlib.util.find_spec(module) is not None:
            assert module in maps, f"{module} is installed but the server does not run it"
