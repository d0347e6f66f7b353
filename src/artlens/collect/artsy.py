"""Artsy's public API (https://developers.artsy.net/), a HAL API that needs an app token.

``GET /api/artworks?size=N[&gene_id=…][&artist_id=…]`` with header ``X-Xapp-Token`` →
``{"_embedded": {"artworks": [...]}, "_links": {"next": {"href": …}}}``; pages are followed through
``_links.next.href`` until a page comes back empty. Each artwork's ``_links.image.href`` is a URL
template with ``{image_version}`` (one of its ``image_versions``: large, medium, square, ...).
Artists come from ``_links.artists.href`` (one more request per artwork, ``artists=False`` skips it).
A ``next`` or ``artists`` link on another host than ``base_url`` is re-based onto ``base_url``, so a
mirror is never left for the real API.

Field mapping: ``source_id`` ← ``id``; ``title`` ← ``title``; ``artist`` ← names of ``_links.artists``;
``date`` ← ``date``; ``medium`` ← ``medium``; ``classification`` ← ``category`` (Painting, Print,
Photography, Drawing, Collage or other Work on Paper, ...); ``license`` ← ``image_rights`` (else
``see source (Artsy terms)``); ``source_url`` ← ``_links.permalink.href``. Artsy images are not
public domain in general: read Artsy's terms before you use them.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

from artlens.collect.base import Record, Ref, Skip, Source, snippet, text, year_range
from artlens.collect.http import ContentError, HTTPStatusError, PoliteClient
from artlens.errors import InvalidParameterError, NetworkError

DEFAULT_BASE_URL = "https://api.artsy.net"
TOKEN_ENV = "ARTSY_TOKEN"
VERSION_PREFERENCE = ("large", "larger", "normalized", "medium", "tall", "square")


def _href(links: Any, name: str) -> str:
    link = links.get(name) if isinstance(links, dict) else None
    return text(link.get("href")) if isinstance(link, dict) else ""


def image_url(art: dict[str, Any], version: str = "large") -> str | None:
    """Expand the artwork's ``{image_version}`` template with ``version`` (or the best one it has)."""
    template = _href(art.get("_links"), "image")
    if not template:
        return None
    versions = [v for v in art.get("image_versions") or [] if isinstance(v, str)]
    if versions and version not in versions:
        version = next((v for v in VERSION_PREFERENCE if v in versions), versions[0])
    return template.replace("{image_version}", version)


def map_artsy(art: dict[str, Any], artists: list[str] | None = None, version: str = "large") -> Record:
    """One Artsy artwork (``_embedded.artworks[i]``) → :class:`Record`."""
    start, end = year_range(text(art.get("date")))
    return Record(
        source="artsy",
        source_id=str(art["id"]),
        image_url=image_url(art, version),
        title=text(art.get("title")),
        artist="; ".join(artists or []),
        date=text(art.get("date")),
        medium=text(art.get("medium")),
        classification=text(art.get("category")),
        license=text(art.get("image_rights")) or "see source (Artsy terms)",
        source_url=_href(art.get("_links"), "permalink"),
        year_start=start,
        year_end=end,
        public_domain=None,
    )


class ArtsySource(Source):
    """Artworks of Artsy's ``/api/artworks`` listing.

    Args:
        token: X-Xapp-Token; default ``$ARTSY_TOKEN``. Missing → :class:`InvalidParameterError`.
        base_url: API root (default the public API).
        gene, artist_id: filter the listing by an Art Genome gene id or an artist id.
        page_size: ``size`` per page.
        image_version: which ``{image_version}`` to download.
        artists: look up artist names (one request per artwork).
    """

    name = "artsy"

    def __init__(self, token: str | None = None, base_url: str | None = None, gene: str | None = None,
                 artist_id: str | None = None, page_size: int = 50, image_version: str = "large",
                 artists: bool = True) -> None:
        self.token = (token or os.environ.get(TOKEN_ENV, "")).strip()
        if not self.token:
            raise InvalidParameterError(
                f"Artsy needs an app token: pass `token` or set {TOKEN_ENV} "
                "(create an app at https://developers.artsy.net and exchange its id and secret for an xapp token)",
                param="token",
            )
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.gene, self.artist_id, self.page_size = gene, artist_id, page_size
        self.image_version, self.artists = image_version, artists

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Xapp-Token": self.token, "Accept": "application/vnd.artsy-v2+json"}

    def _rebase(self, href: str) -> str:
        """A link of the API on ``base_url`` (a mirror or test server stays one)."""
        parts, base = urllib.parse.urlsplit(href), urllib.parse.urlsplit(self.base_url)
        if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
            return href
        return urllib.parse.urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))

    def _get(self, client: PoliteClient, url: str, params: dict[str, Any] | None = None) -> Any:
        try:
            return client.get_json(url, params, headers=self.headers)
        except HTTPStatusError as exc:
            if exc.status in (401, 403):
                raise NetworkError(f"Artsy refused the app token (HTTP {exc.status} from {url}); "
                                   "tokens expire: get a new one") from None
            raise

    def refs(self, client: PoliteClient) -> Iterator[Ref]:
        url: str | None = f"{self.base_url}/api/artworks"
        params: dict[str, Any] | None = {"size": self.page_size, "gene_id": self.gene, "artist_id": self.artist_id}
        while url:
            data = self._get(client, url, params)
            arts = (data.get("_embedded") or {}).get("artworks") if isinstance(data, dict) else None
            if not isinstance(arts, list):
                raise ContentError(f"unexpected answer from {url}: {snippet(data)} (expected _embedded.artworks)")
            if not arts:
                return
            for art in arts:
                if isinstance(art, dict) and "id" in art:
                    yield Ref(str(art["id"]), art)
            nxt = _href(data.get("_links"), "next")
            url, params = (self._rebase(nxt), None) if nxt else (None, None)

    def record(self, client: PoliteClient, ref: Ref) -> Record:
        art = ref.payload
        names: list[str] = []
        link = _href(art.get("_links"), "artists")
        if self.artists and link:
            data = self._get(client, self._rebase(link))
            found = (data.get("_embedded") or {}).get("artists") if isinstance(data, dict) else None
            if not isinstance(found, list):
                raise Skip(f"unexpected artists answer: {snippet(data)}", transient=True)
            names = [text(a.get("name")) for a in found if isinstance(a, dict) and a.get("name")]
        return map_artsy(art, names, self.image_version)
