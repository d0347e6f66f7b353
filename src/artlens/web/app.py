"""The ASGI app: :func:`create_app` wires the catalog, the data folder, the job runner, the tile store,
the security middleware, the ``/api`` router and the HTML pages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from artlens import __version__
from artlens.catalog import Catalog, catalog_location
from artlens.errors import ArtlensError
from artlens.web import api, pages
from artlens.web.deps import error_status
from artlens.web.jobs import JobRunner
from artlens.web.security import LOOPBACK_NAMES, SecurityMiddleware, server_secret
from artlens.web.tilecache import CachedTiles
from artlens.web.tiles import TileStore

log = logging.getLogger(__name__)
HERE = Path(str(resources.files("artlens.web")))
"""The package folder holding ``static/`` and ``templates/`` (package data, see pyproject.toml)."""


@dataclass
class WebConfig:
    """Settings of one app instance.

    Attributes:
        catalog: the catalog (shared with the CLI): a SQLite file, or a ``postgresql://`` URL.
        data_dir: where uploads (``images/``), tiles (``tiles/``) and job outputs (``jobs/``) go.
        max_upload_bytes: the largest request body accepted.
        token: shared secret required on every request (``None``: none, loopback only).
        workers: job worker threads (0: jobs queue but do not run, e.g. for tests of the queue).
        allowed_hosts: host names the app answers to without a token.
    """

    catalog: Path | str
    data_dir: Path
    max_upload_bytes: int = 512 * 2**20
    token: str | None = None
    workers: int = 1
    allowed_hosts: set[str] = field(default_factory=lambda: set(LOOPBACK_NAMES))


def default_data_dir(catalog: Path | str) -> Path:
    """``<catalog stem>-data`` next to a catalog file (``artlens.db`` → ``artlens-data/``); for a database
    URL, ``./artlens-data``."""
    if isinstance(catalog, str):
        return Path("artlens-data")
    return catalog.parent / f"{catalog.stem}-data"


def create_app(catalog: str | Path | None = None, data_dir: str | Path | None = None, *,
               max_upload_mb: float = 512, token: str | None = None, workers: int = 1,
               allowed_hosts: set[str] | None = None) -> FastAPI:
    """Build the web app.

    Args:
        catalog: catalog database file or ``postgresql://`` URL (default ``$ARTLENS_CATALOG`` or
            ``./artlens.db``); a file is created if missing.
        data_dir: the app's data folder (default: :func:`default_data_dir`).
        max_upload_mb: upload limit, MB (2**20 bytes).
        token: shared secret for every request; needed to serve anything but loopback.
        workers: job worker threads started with the app.
        allowed_hosts: host names accepted without a token (default: loopback names).
    """
    location = catalog_location(None if catalog is None else str(catalog))
    cat_path = location.resolve() if isinstance(location, Path) else location
    with Catalog(cat_path):  # a bad catalog fails here, with its one-line message
        pass
    cfg = WebConfig(catalog=cat_path, data_dir=Path(data_dir or default_data_dir(cat_path)).resolve(),
                    max_upload_bytes=int(max_upload_mb * 2**20), token=token or None, workers=workers,
                    allowed_hosts=set(allowed_hosts or LOOPBACK_NAMES))
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    runner = JobRunner(cfg.catalog, cfg.data_dir, cfg.workers)
    tiles = TileStore(cfg.data_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            runner.stop()
            tiles.close()

    app = FastAPI(title="artlens", version=__version__, lifespan=lifespan,
                  description="Technical art history in the browser: the catalog, deep zoom with map overlays, "
                              "and analyses run as background jobs. The JSON API mirrors the CLI's JSON.",
                  # Swagger UI and ReDoc load scripts from a CDN: off. /api lists the OpenAPI schema's routes.
                  docs_url=None, redoc_url=None, openapi_url="/api/openapi.json")
    app.state.config = cfg
    app.state.runner = runner
    app.state.tiles = tiles
    app.state.image_rows = {}  # image id -> catalog row, for the tile routes
    app.state.templates = _templates()

    import xstatic.pkg.leaflet as leaflet

    app.mount("/static/leaflet", StaticFiles(directory=leaflet.BASE_DIR), name="leaflet")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")


    app.include_router(api.router)
    app.include_router(pages.router)
    _error_handlers(app)
    # inside the security middleware (added last, so outermost): cached tiles answered without the router
    app.add_middleware(CachedTiles, image_rows=app.state.image_rows, tiles_root=tiles.root)
    app.add_middleware(SecurityMiddleware, max_body=cfg.max_upload_bytes, token=cfg.token,
                       allowed_hosts=cfg.allowed_hosts, secret=server_secret(cfg.data_dir))
    return app


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[_csrf_context])
    templates.env.globals["version"] = __version__
    return templates


def _csrf_context(request: Request) -> dict[str, str]:
    """Every page's form token (see :mod:`artlens.web.security`): ``{{ csrf_token }}`` in the templates."""
    return {"csrf_token": request.scope.get("state", {}).get("csrf_token", "")}


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ArtlensError)
    async def artlens_error(request: Request, exc: ArtlensError) -> Response:  # JSON for /api/, else a page
        status = error_status(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        return pages.error_page(request, status, str(exc))
