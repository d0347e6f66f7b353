"""The Art Institute of Chicago API (https://api.artic.edu/docs/), images through its IIIF server.

``GET /api/v1/artworks?page=N&limit=100&fields=…`` (or ``/api/v1/artworks/search?q=…`` with a query)
→ ``{"pagination": {"total_pages", "current_page", ...}, "data": [...], "config": {"iiif_url",
"website_url"}}``. Images: ``{iiif_url}/{image_id}/full/843,/0/default.jpg`` (843 px wide is the
size the AIC recommends). Public-domain images are released under CC0.

Field mapping: ``source_id`` ← ``id``; ``title`` ← ``title``; ``artist`` ← ``artist_title`` (else
``artist_display``); ``date`` ← ``date_display`` (years from ``date_start`` / ``date_end``);
``medium`` ← ``medium_display``; ``classification`` ← ``artwork_type_title`` (Painting, Print,
Drawing and Watercolor, Photograph, ...); ``license`` ← ``CC0-1.0`` when ``is_public_domain`` else
``restricted``; ``source_url`` ← ``{website_url}/artworks/{id}``; ``style`` ← ``style_title``;
``genre`` ← ``subject_titles`` (joined).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from artlens.collect.base import Record, Ref, Source, snippet, text
from artlens.collect.http import ContentError, PoliteClient

DEFAULT_BASE_URL = "https://api.artic.edu"
DEFAULT_IIIF = "https://www.artic.edu/iiif/2"
DEFAULT_WEBSITE = "https://www.artic.edu"
FIELDS = ("id,title,artist_title,artist_display,date_display,date_start,date_end,medium_display,"
          "artwork_type_title,classification_title,is_public_domain,image_id,style_title,subject_titles")


def map_aic(art: dict[str, Any], iiif_url: str = DEFAULT_IIIF, website_url: str = DEFAULT_WEBSITE,
            image_size: str = "843,") -> Record:
    """One AIC artwork (``data[i]``) → :class:`Record`."""
    pd = art.get("is_public_domain")
    image_id = text(art.get("image_id"))
    start, end = art.get("date_start"), art.get("date_end")
    return Record(
        source="aic",
        source_id=str(art["id"]),
        image_url=f"{iiif_url.rstrip('/')}/{image_id}/full/{image_size}/0/default.jpg" if image_id else None,
        title=text(art.get("title")),
        artist=text(art.get("artist_title")) or text(art.get("artist_display")),
        date=text(art.get("date_display")),
        medium=text(art.get("medium_display")),
        classification=text(art.get("artwork_type_title")) or text(art.get("classification_title")),
        license="CC0-1.0" if pd is True else "restricted (see source)",
        source_url=f"{website_url.rstrip('/')}/artworks/{art['id']}",
        style=text(art.get("style_title")),
        genre=text(art.get("subject_titles")),
        year_start=start if isinstance(start, int) else None,
        year_end=end if isinstance(end, int) else None,
        public_domain=pd if isinstance(pd, bool) else None,
    )


class AicSource(Source):
    """Artworks of the AIC listing (or full-text search with ``query``), 100 a page.

    Args:
        base_url: API root (default the public API).
        query: full-text search; without it the whole collection is listed.
        page_size: records per listing page (the AIC allows up to 100).
        image_size: IIIF size parameter, default ``843,``.
    """

    name = "aic"

    def __init__(self, base_url: str | None = None, query: str | None = None, page_size: int = 100,
                 image_size: str = "843,") -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.query, self.page_size, self.image_size = query, page_size, image_size

    def refs(self, client: PoliteClient) -> Iterator[Ref]:
        url = f"{self.base_url}/api/v1/artworks" + ("/search" if self.query else "")
        page = 1
        while True:
            data = client.get_json(url, {"q": self.query, "fields": FIELDS, "limit": self.page_size, "page": page})
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                raise ContentError(f"unexpected answer from {url} page {page}: {snippet(data)} (expected data)")
            raw_config = data.get("config")
            config = raw_config if isinstance(raw_config, dict) else {}
            iiif = text(config.get("iiif_url")) or DEFAULT_IIIF
            website = text(config.get("website_url")) or DEFAULT_WEBSITE
            for art in data["data"]:
                if isinstance(art, dict) and "id" in art:
                    yield Ref(str(art["id"]), (art, iiif, website))
            pages = (data.get("pagination") or {}).get("total_pages")
            if not data["data"] or not isinstance(pages, int) or page >= pages:
                return
            page += 1

    def record(self, client: PoliteClient, ref: Ref) -> Record:
        art, iiif, website = ref.payload
        return map_aic(art, iiif, website, self.image_size)
