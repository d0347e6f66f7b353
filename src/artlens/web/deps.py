"""What every route needs, shared by the API and the pages: the request's catalog and the HTTP status
of a user error. (Kept apart from :mod:`artlens.web.app`, which imports the routers.)"""

from __future__ import annotations

from fastapi import Request

from artlens.catalog import Catalog
from artlens.errors import (
    ArtlensError,
    InputNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    MissingResolutionError,
    UnreadableInputError,
)
from artlens.web.storage import UploadTooLarge


def error_status(exc: ArtlensError) -> int:
    """The HTTP status of a user error."""
    if isinstance(exc, UploadTooLarge):
        return 413
    if isinstance(exc, InputNotFoundError):
        return 404
    if isinstance(exc, UnreadableInputError | InvalidImageError):
        return 415
    if isinstance(exc, InvalidParameterError | MissingResolutionError):
        return 422
    return 400


def open_catalog(request: Request) -> Catalog:
    """A catalog connection for this request; use it in a ``with`` block in the thread that made it
    (SQLite connections stay in their thread)."""
    return Catalog(request.app.state.config.catalog)
