"""``artlens collect ...``: build a labelled image collection from the Met, the AIC, Artsy or WikiArt."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from artlens.cli.common import echo, echo_json, show_progress

app = typer.Typer(
    help="Collect images and labels from museum open-access APIs, Artsy and WikiArt (polite, resumable).",
    no_args_is_help=True,
)

# options shared by every collector
OUT = typer.Option(..., "--out", "-o", help="Collection folder: images/, labels.csv, skipped.csv, journal.")
LIMIT = typer.Option(None, "--limit", min=0, help="Stop when the folder holds this many items from the source.")
CLASSIFICATION = typer.Option(
    None, "--classification",
    help="Keep only this medium class (painting, drawing, engraving, gouache-watercolour, photography) or "
         "source classification (e.g. Met 'Paintings'); repeatable.",
)
DATE_FROM = typer.Option(None, "--date-from", help="Keep works whose dates reach this year or later.")
DATE_TO = typer.Option(None, "--date-to", help="Keep works whose dates start by this year.")
RATE = typer.Option(1.0, "--rate", help="Requests per second per host (default 1).")
TIMEOUT = typer.Option(30.0, "--timeout", help="Network timeout per request, seconds.")
RETRIES = typer.Option(4, "--retries", help="Retries after 429/5xx/connection errors.")
BACKOFF = typer.Option(1.0, "--backoff", help="Base of the exponential backoff between retries, seconds.")
CONTACT = typer.Option(None, "--contact", help="Contact (URL or e-mail) for the User-Agent; default $ARTLENS_CONTACT.")
MAX_MB = typer.Option(50.0, "--max-mb", help="Largest image download, MB.")
MAX_MPIX = typer.Option(100.0, "--max-megapixels", help="Largest image, megapixels.")
CATALOG = typer.Option(None, "--catalog",
                       help="Catalog: SQLite file or postgresql:// URL (default $ARTLENS_CATALOG or ./artlens.db).")
NO_CATALOG = typer.Option(False, "--no-catalog", help="Do not record the items in the catalog.")
AS_JSON = typer.Option(False, "--json", help="Print one JSON object with the counts.")


def _run(source, out: Path, *, limit, classification, date_from, date_to, rate, timeout, retries, backoff, contact,
         max_mb, max_mpix, catalog, no_catalog, as_json, public_domain_only=False, robots=False,
         extra_headers=None) -> None:  # noqa: ANN001
    from artlens.collect import CollectOptions, Filters, PoliteClient, collect, default_user_agent

    filters = Filters(public_domain_only=public_domain_only, classifications=tuple(classification or ()),
                      date_from=date_from, date_to=date_to)
    client = PoliteClient(rate=rate, timeout_s=timeout, retries=retries, backoff_s=backoff,
                          user_agent=default_user_agent(contact), respect_robots=robots, headers=extra_headers)
    progress = None
    if show_progress(as_json):
        def progress(status: str, key: str, result) -> None:  # noqa: ANN001
            print(f"\r{result.new} new, {result.skipped} skipped, {result.failed} failed  {key:<30}",
                  end="", file=sys.stderr, flush=True)

    options = CollectOptions(limit=limit, filters=filters, max_bytes=int(max_mb * 2**20),
                             max_pixels=int(max_mpix * 1e6), catalog=catalog, use_catalog=not no_catalog,
                             progress=progress)
    try:
        result = collect(source, out, client, options)
    finally:
        if progress is not None:
            print(file=sys.stderr)
    if as_json:
        echo_json(result.to_dict())
    else:
        echo(result.line())


@app.command("met")
def met(
    out: Path = OUT,
    base_url: str | None = typer.Option(None, "--base-url", help="API root (default https://collectionapi.metmuseum.org)."),
    query: str | None = typer.Option(None, "--query", "-q", help="Search term (default '*')."),
    department: int | None = typer.Option(None, "--department", help="Met departmentId (11 = European Paintings)."),
    include_restricted: bool = typer.Option(False, "--include-restricted", help="Also keep non-public-domain works."),
    small: bool = typer.Option(False, "--small", help="Download primaryImageSmall instead of the original."),
    limit: int | None = LIMIT, classification: list[str] | None = CLASSIFICATION,
    date_from: int | None = DATE_FROM, date_to: int | None = DATE_TO,
    rate: float = RATE, timeout: float = TIMEOUT, retries: int = RETRIES, backoff: float = BACKOFF,
    contact: str | None = CONTACT, max_mb: float = MAX_MB, max_mpix: float = MAX_MPIX,
    catalog: str | None = CATALOG, no_catalog: bool = NO_CATALOG, as_json: bool = AS_JSON,
) -> None:
    """The Metropolitan Museum of Art: search, then one object record and its primaryImage per result."""
    from artlens.collect import MetSource

    source = MetSource(base_url, query, department, date_from, date_to, small_images=small)
    _run(source, out, limit=limit, classification=classification, date_from=date_from, date_to=date_to, rate=rate,
         timeout=timeout, retries=retries, backoff=backoff, contact=contact, max_mb=max_mb, max_mpix=max_mpix,
         catalog=catalog, no_catalog=no_catalog, as_json=as_json, public_domain_only=not include_restricted)


@app.command("aic")
def aic(
    out: Path = OUT,
    base_url: str | None = typer.Option(None, "--base-url", help="API root (default https://api.artic.edu)."),
    query: str | None = typer.Option(None, "--query", "-q", help="Full-text search (default: the whole listing)."),
    include_restricted: bool = typer.Option(False, "--include-restricted", help="Also keep non-public-domain works."),
    image_size: str = typer.Option("843,", "--image-size", help="IIIF size parameter."),
    limit: int | None = LIMIT, classification: list[str] | None = CLASSIFICATION,
    date_from: int | None = DATE_FROM, date_to: int | None = DATE_TO,
    rate: float = RATE, timeout: float = TIMEOUT, retries: int = RETRIES, backoff: float = BACKOFF,
    contact: str | None = CONTACT, max_mb: float = MAX_MB, max_mpix: float = MAX_MPIX,
    catalog: str | None = CATALOG, no_catalog: bool = NO_CATALOG, as_json: bool = AS_JSON,
) -> None:
    """The Art Institute of Chicago: paged listing or search, images from its IIIF server."""
    from artlens.collect import AicSource

    source = AicSource(base_url, query, image_size=image_size)
    _run(source, out, limit=limit, classification=classification, date_from=date_from, date_to=date_to, rate=rate,
         timeout=timeout, retries=retries, backoff=backoff, contact=contact, max_mb=max_mb, max_mpix=max_mpix,
         catalog=catalog, no_catalog=no_catalog, as_json=as_json, public_domain_only=not include_restricted)


@app.command("artsy")
def artsy(
    out: Path = OUT,
    token: str | None = typer.Option(None, "--token", help="Artsy X-Xapp-Token (default $ARTSY_TOKEN)."),
    base_url: str | None = typer.Option(None, "--base-url", help="API root (default https://api.artsy.net)."),
    gene: str | None = typer.Option(None, "--gene", help="Only artworks with this Art Genome gene id."),
    artist_id: str | None = typer.Option(None, "--artist-id", help="Only artworks by this artist id."),
    image_version: str = typer.Option("large", "--image-version", help="Image version to download."),
    no_artists: bool = typer.Option(False, "--no-artist-lookup", help="Skip the per-artwork artist request."),
    limit: int | None = LIMIT, classification: list[str] | None = CLASSIFICATION,
    date_from: int | None = DATE_FROM, date_to: int | None = DATE_TO,
    rate: float = RATE, timeout: float = TIMEOUT, retries: int = RETRIES, backoff: float = BACKOFF,
    contact: str | None = CONTACT, max_mb: float = MAX_MB, max_mpix: float = MAX_MPIX,
    catalog: str | None = CATALOG, no_catalog: bool = NO_CATALOG, as_json: bool = AS_JSON,
) -> None:
    """Artsy's HAL API (needs an app token); medium label from the artwork category."""
    from artlens.collect import ArtsySource

    source = ArtsySource(token, base_url, gene, artist_id, image_version=image_version, artists=not no_artists)
    _run(source, out, limit=limit, classification=classification, date_from=date_from, date_to=date_to, rate=rate,
         timeout=timeout, retries=retries, backoff=backoff, contact=contact, max_mb=max_mb, max_mpix=max_mpix,
         catalog=catalog, no_catalog=no_catalog, as_json=as_json)


@app.command("wikiart")
def wikiart(
    out: Path = OUT,
    artist: str | None = typer.Option(None, "--artist", help="WikiArt artist URL name, e.g. claude-monet."),
    style: str | None = typer.Option(None, "--style", help="WikiArt style URL name, e.g. impressionism."),
    base_url: str | None = typer.Option(None, "--base-url", help="Site root (default https://www.wikiart.org)."),
    lang: str = typer.Option("en", "--lang", help="Site language prefix."),
    no_details: bool = typer.Option(False, "--no-details", help="Skip the per-painting details request."),
    limit: int | None = LIMIT, classification: list[str] | None = CLASSIFICATION,
    date_from: int | None = DATE_FROM, date_to: int | None = DATE_TO,
    rate: float = RATE, timeout: float = TIMEOUT, retries: int = RETRIES, backoff: float = BACKOFF,
    contact: str | None = CONTACT, max_mb: float = MAX_MB, max_mpix: float = MAX_MPIX,
    catalog: str | None = CATALOG, no_catalog: bool = NO_CATALOG, as_json: bool = AS_JSON,
) -> None:
    """WikiArt paintings of one artist or style (robots.txt honoured); style and genre labels."""
    from artlens.collect import WikiArtSource

    source = WikiArtSource(artist, style, base_url, lang, details=not no_details)
    _run(source, out, limit=limit, classification=classification, date_from=date_from, date_to=date_to, rate=rate,
         timeout=timeout, retries=retries, backoff=backoff, contact=contact, max_mb=max_mb, max_mpix=max_mpix,
         catalog=catalog, no_catalog=no_catalog, as_json=as_json, robots=True)
