"""``artlens serve``: the local web app (FastAPI + uvicorn)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from artlens.cli.common import echo
from artlens.errors import InvalidParameterError


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_serve_options(host: str, token: str | None, port: int, max_upload_mb: float, workers: int) -> None:
    """Refuse unsafe or impossible settings with a one-line message."""
    if not is_loopback(host) and not token:
        raise InvalidParameterError(f"--host {host} would open artlens to the network: give --token SECRET too "
                                    "(every request must then carry it)")
    if token is not None and len(token) < 8:
        raise InvalidParameterError("--token must be at least 8 characters")
    if not 0 < port < 65536:
        raise InvalidParameterError(f"--port must lie between 1 and 65535, got {port}")
    if not max_upload_mb > 0:
        raise InvalidParameterError(f"--max-upload-mb must be positive, got {max_upload_mb:g}")
    if not 0 <= workers <= 64:
        raise InvalidParameterError(f"--workers must lie between 0 and 64, got {workers}")


def serve(
    catalog: str | None = typer.Option(None, "--catalog",
                                       help="Catalog: SQLite file or postgresql:// URL (default $ARTLENS_CATALOG "
                                            "or ./artlens.db)."),
    data_dir: Path | None = typer.Option(None, "--data-dir",
                                         help="Uploads, tiles and job outputs (default: <catalog>-data next to a "
                                              "catalog file, ./artlens-data for a URL)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; other than loopback needs --token."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    max_upload_mb: float = typer.Option(512, "--max-upload-mb", help="Largest upload, MB."),
    token: str | None = typer.Option(None, "--token", envvar="ARTLENS_TOKEN",
                                     help="Shared secret required on every request (log in at /login)."),
    workers: int = typer.Option(1, "--workers", help="Analyses run at the same time (job worker threads)."),
) -> None:
    """Serve the catalog in a browser: collection, deep zoom with overlays, analyses as background jobs."""
    check_serve_options(host, token, port, max_upload_mb, workers)
    import uvicorn

    from artlens.web import create_app

    app = create_app(catalog, data_dir, max_upload_mb=max_upload_mb, token=token, workers=workers,
                     allowed_hosts={"127.0.0.1", "localhost", "::1", host})
    shown = f"[{host}]" if ":" in host else host
    where = app.state.config.catalog
    if isinstance(where, str):
        from artlens.catalog import Catalog

        with Catalog(where) as cat:
            where = cat.location  # the URL with its password hidden
    echo(f"artlens serving {where} at http://{shown}:{port}  (Ctrl-C stops it)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
