"""WikiArt (https://www.wikiart.org), by artist or by style listing; robots.txt is honoured.

WikiArt serves HTML pages that also answer with JSON (``json=2``):

- by artist: ``GET /{lang}/App/Painting/PaintingsByArtist?artistUrl=claude-monet&json=2`` → a list;
- by style: ``GET /{lang}/paintings-by-style/impressionism?json=2&page=N`` →
  ``{"Paintings": [...], "AllPaintingsCount": n, "PageSize": 60}``, pages until one comes back empty;
- details (style, genre, technique): ``GET /{lang}/App/Painting/ImageJson/{contentId}``
  (one more request per painting; ``details=False`` skips it).

Field mapping: ``source_id`` ← ``contentId``; ``title`` ← ``title``; ``artist`` ← ``artistName``;
``date`` ← ``yearAsString`` / ``completitionYear``; ``medium`` ← details ``media`` (else
``technique, material``); ``classification`` ← ``""`` (WikiArt has none); ``style`` ←
details ``style`` (else the listed style); ``genre`` ← details ``genre``; ``source_url`` ←
``{base}{paintingUrl}``; ``license`` ← ``unknown`` (WikiArt hosts works still under copyright:
check each work before use). Missing keys leave a column empty.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

from artlens.collect.base import Record, Ref, Skip, Source, snippet, text, year_range
from artlens.collect.http import ContentError, PoliteClient
from artlens.errors import InvalidParameterError

DEFAULT_BASE_URL = "https://www.wikiart.org"
LICENSE = "unknown (WikiArt; check the work's copyright)"


def map_wikiart(p: dict[str, Any], details: dict[str, Any] | None = None, base_url: str = DEFAULT_BASE_URL,
                lang: str = "en", listed_style: str = "") -> Record:
    """One WikiArt listing entry (plus its ``ImageJson`` details) → :class:`Record`."""
    d = details or {}
    sid = str(p.get("contentId") or p.get("id"))
    date = text(p.get("yearAsString")) or text(p.get("completitionYear")) or text(d.get("yearAsString"))
    start, end = year_range(date)
    page = text(p.get("paintingUrl"))
    if not page and p.get("url") and p.get("artistUrl"):
        page = f"/{lang}/{text(p['artistUrl']).strip('/')}/{text(p['url'])}"
    return Record(
        source="wikiart",
        source_id=sid,
        image_url=text(p.get("image")) or text(d.get("image")) or None,
        title=text(p.get("title")) or text(d.get("title")),
        artist=text(p.get("artistName")) or text(d.get("artistName")),
        date=date,
        medium=text(d.get("media")) or ", ".join(x for x in (text(d.get("technique")), text(d.get("material"))) if x),
        classification="",
        license=LICENSE,
        source_url=urllib.parse.urljoin(base_url + "/", page.lstrip("/")) if page else "",
        style=text(d.get("style")) or listed_style,
        genre=text(d.get("genre")),
        year_start=start,
        year_end=end,
        public_domain=None,
    )


class WikiArtSource(Source):
    """Paintings of one WikiArt artist (``artist``: its URL name, e.g. ``claude-monet``) or style
    (``style``: e.g. ``impressionism``). The client must be made with ``respect_robots=True``.
    """

    name = "wikiart"

    def __init__(self, artist: str | None = None, style: str | None = None, base_url: str | None = None,
                 lang: str = "en", details: bool = True) -> None:
        if bool(artist) == bool(style):
            raise InvalidParameterError(
                "give exactly one of `artist` (e.g. claude-monet) or `style` (e.g. impressionism)", param="artist"
            )
        self.artist, self.style = artist, style
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.lang, self.details = lang, details

    def refs(self, client: PoliteClient) -> Iterator[Ref]:
        if self.artist:
            url = f"{self.base_url}/{self.lang}/App/Painting/PaintingsByArtist"
            data = client.get_json(url, {"artistUrl": self.artist, "json": 2})
            if not isinstance(data, list):
                raise ContentError(f"unexpected answer from {url}: {snippet(data)} (expected a list of paintings)")
            for p in data:
                if isinstance(p, dict) and (p.get("contentId") or p.get("id")):
                    yield Ref(str(p.get("contentId") or p.get("id")), p)
            return
        url = f"{self.base_url}/{self.lang}/paintings-by-style/{urllib.parse.quote(str(self.style))}"
        page, seen = 1, 0
        while True:
            data = client.get_json(url, {"json": 2, "page": page})
            paintings = data.get("Paintings") if isinstance(data, dict) else None
            if not isinstance(paintings, list):
                raise ContentError(f"unexpected answer from {url} page {page}: {snippet(data)} (expected Paintings)")
            if not paintings:
                return
            for p in paintings:
                if isinstance(p, dict) and (p.get("contentId") or p.get("id")):
                    yield Ref(str(p.get("contentId") or p.get("id")), p)
            seen += len(paintings)
            total = data.get("AllPaintingsCount")
            if isinstance(total, int) and seen >= total:
                return
            page += 1

    def record(self, client: PoliteClient, ref: Ref) -> Record:
        details = None
        if self.details:
            details = client.get_json(f"{self.base_url}/{self.lang}/App/Painting/ImageJson/{ref.source_id}")
            if not isinstance(details, dict):
                raise Skip(f"unexpected painting details: {snippet(details)}", transient=True)
        listed = (self.style or "").replace("-", " ").title() if self.style else ""
        return map_wikiart(ref.payload, details, self.base_url, self.lang, listed)
