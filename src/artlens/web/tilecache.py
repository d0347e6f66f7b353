"""Cached deep-zoom tiles answered without FastAPI: a pure-ASGI layer inside the security middleware.

A cached tile is a few kB that never changes (its image is stored under its SHA-256), so its request should
cost next to nothing. Through FastAPI's router, dependency resolution and ``Response`` it cost about a
millisecond of the server's CPU, and under 20 concurrent clients on 2 cores those milliseconds queue. This
layer matches ``GET /tiles/{id}_files/{level}/{col}_{row}.jpg`` itself and answers from

1. an in-memory LRU of tile bytes (``max_bytes``, 64 MB by default: a few thousand tiles), else
2. the tile file on disk, when the image's catalog row is already remembered by the app
   (``app.state.image_rows``) and the tile was made before (then it joins the LRU),

with an ``ETag`` (the image's hash and the tile's place) and ``Cache-Control``, and ``304 Not Modified`` to
a browser that sends the ETag back. Everything else (a tile not made yet, an unknown image, any other path)
goes on to the app, which makes the tile. The security middleware stays outside: host, token and headers
apply to these answers as to every other.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

from artlens.web.security import ASGIApp, Receive, Scope, Send

TILE_PATH = re.compile(r"/tiles/(\d{1,12})_files/(\d{1,3})/(\d{1,7})_(\d{1,7})\.jpg")
TILE_CACHE_CONTROL = "private, max-age=86400"


def tile_etag(sha256: str, level: int, col: int, row: int) -> str:
    """The tile's entity tag: its image's hash and its place (a tile's bytes never change)."""
    return f'"{sha256[:20]}-{level}-{col}-{row}"'


class TileBytes:
    """An LRU of tile bytes, bounded by their total size; used on the event loop only (no lock)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()

    def get(self, key: tuple[str, int, int, int]) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: tuple[str, int, int, int], data: bytes) -> None:
        if len(data) > self.max_bytes or key in self._items:
            return
        self._items[key] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self.size -= len(old)

    def __len__(self) -> int:
        return len(self._items)


class CachedTiles:
    """See the module docstring. ``image_rows`` is the app's id → catalog row map; ``tiles_root`` holds
    ``<sha256>/<level>/<col>_<row>.jpg``."""

    def __init__(self, app: ASGIApp, *, image_rows: dict[int, dict[str, Any]], tiles_root: Path,
                 max_bytes: int = 64 * 2**20) -> None:
        self.app = app
        self.image_rows = image_rows
        self.root = tiles_root
        self.memory = TileBytes(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            m = TILE_PATH.fullmatch(scope.get("path", ""))
            rec = self.image_rows.get(int(m.group(1))) if m else None
            if m is not None and rec is not None:
                level, col, row = int(m.group(2)), int(m.group(3)), int(m.group(4))
                key = (str(rec["sha256"]), level, col, row)
                data = self.memory.get(key)
                if data is None:
                    try:
                        data = (self.root / key[0] / str(level) / f"{col}_{row}.jpg").read_bytes()
                    except OSError:
                        data = None  # not made yet: the app makes it
                    else:
                        self.memory.put(key, data)
                if data is not None:
                    await self._answer(scope, send, data, tile_etag(*key))
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(scope: Scope, send: Send, data: bytes, etag: str) -> None:
        headers = [(b"etag", etag.encode()), (b"cache-control", TILE_CACHE_CONTROL.encode())]
        if _matches(scope, etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", b"image/jpeg"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else data})


def _matches(scope: Scope, etag: str) -> bool:
    for k, v in scope.get("headers", []):
        if k == b"if-none-match":
            given = v.decode("latin-1")
            return given.strip() == "*" or etag in (t.strip().removeprefix("W/") for t in given.split(","))
    return False
