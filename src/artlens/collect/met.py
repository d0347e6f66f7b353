"""The Metropolitan Museum of Art collection API (https://metmuseum.github.io/).

``GET /public/collection/v1/search?q=…&hasImages=true[&departmentId=…][&dateBegin=…&dateEnd=…]``
→ ``{"total": n, "objectIDs": [...]}``; ``GET /public/collection/v1/objects/{id}`` → one object
record; ``GET /public/collection/v1/departments`` → ``{"departments": [{"departmentId", "displayName"}]}``.
Open Access images (``isPublicDomain: true``) are released under CC0.

Field mapping: ``source_id`` ← ``objectID``; ``title`` ← ``title``; ``artist`` ← ``artistDisplayName``;
``date`` ← ``objectDate`` (years from ``objectBeginDate`` / ``objectEndDate``); ``medium`` ←
``medium``; ``classification`` ← ``classification``; ``license`` ← ``CC0-1.0`` when
``isPublicDomain`` else ``restricted``; ``source_url`` ← ``objectURL``; image ← ``primaryImage``
(``primaryImageSmall`` with ``small_images``). The Met has no style or genre fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from artlens.collect.base import Record, Ref, Skip, Source, snippet, text
from artlens.collect.http import ContentError, HTTPStatusError, PoliteClient
from artlens.errors import InvalidParameterError

DEFAULT_BASE_URL = "https://collectionapi.metmuseum.org"
API = "/public/collection/v1"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def map_met(obj: dict[str, Any], small_images: bool = False) -> Record:
    """One Met object record → :class:`Record`."""
    pd = obj.get("isPublicDomain")
    image = text(obj.get("primaryImageSmall") if small_images else obj.get("primaryImage"))
    if not image and not small_images:
        image = text(obj.get("primaryImageSmall"))
    return Record(
        source="met",
        source_id=str(obj["objectID"]),
        image_url=image or None,
        title=text(obj.get("title")),
        artist=text(obj.get("artistDisplayName")),
        date=text(obj.get("objectDate")),
        medium=text(obj.get("medium")),
        classification=text(obj.get("classification")),
        license="CC0-1.0" if pd is True else "restricted (see source)",
        source_url=text(obj.get("objectURL")),
        year_start=_int(obj.get("objectBeginDate")),
        year_end=_int(obj.get("objectEndDate")),
        public_domain=pd if isinstance(pd, bool) else None,
    )


class MetSource(Source):
    """Objects of a Met search, one object request each.

    Args:
        base_url: API root (default the public API); tests and mirrors point it elsewhere.
        query: the search term ``q`` (the Met needs one; default ``*``).
        department: ``departmentId``; checked against ``/departments`` first, so an unknown id fails
            with the list of valid ones instead of an empty result.
        date_from, date_to: sent as ``dateBegin`` / ``dateEnd`` when both are given (the Met needs both).
        small_images: download ``primaryImageSmall`` (web-large) instead of the original.
    """

    name = "met"

    def __init__(self, base_url: str | None = None, query: str | None = None, department: int | None = None,
                 date_from: int | None = None, date_to: int | None = None, small_images: bool = False) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.query = query if query else "*"
        self.department = department
        self.date_from, self.date_to = date_from, date_to
        self.small_images = small_images

    def _check_department(self, client: PoliteClient) -> None:
        try:
            data = client.get_json(f"{self.base_url}{API}/departments")
        except HTTPStatusError as exc:
            if exc.status == 404:
                return  # a mirror without the endpoint: let the search decide
            raise
        depts = data.get("departments") if isinstance(data, dict) else None
        if not isinstance(depts, list):
            raise ContentError(f"unexpected answer from {self.base_url}{API}/departments: {snippet(data)}")
        ids = {_int(d.get("departmentId")): text(d.get("displayName")) for d in depts if isinstance(d, dict)}
        if self.department not in ids:
            listing = ", ".join(f"{k} ({v})" for k, v in sorted(ids.items(), key=lambda kv: kv[0] or 0))
            raise InvalidParameterError(f"unknown Met department {self.department}; valid ids: {listing}")

    def refs(self, client: PoliteClient) -> Iterator[Ref]:
        if self.department is not None:
            self._check_department(client)
        params: dict[str, Any] = {"q": self.query, "hasImages": "true", "departmentId": self.department}
        if self.date_from is not None and self.date_to is not None:
            params.update(dateBegin=self.date_from, dateEnd=self.date_to)
        url = f"{self.base_url}{API}/search"
        data = client.get_json(url, params)
        if not isinstance(data, dict) or "objectIDs" not in data:
            raise ContentError(f"unexpected answer from {url}: {snippet(data)} (expected total and objectIDs)")
        ids = data.get("objectIDs") or []
        if not isinstance(ids, list):
            raise ContentError(f"unexpected objectIDs from {url}: {snippet(ids)}")
        for object_id in ids:
            yield Ref(str(object_id))

    def record(self, client: PoliteClient, ref: Ref) -> Record:
        obj = client.get_json(f"{self.base_url}{API}/objects/{ref.source_id}")
        if not isinstance(obj, dict) or "objectID" not in obj:
            message = obj.get("message") if isinstance(obj, dict) else None
            raise Skip(f"no object record ({message or snippet(obj)})")
        return map_met(obj, self.small_images)
