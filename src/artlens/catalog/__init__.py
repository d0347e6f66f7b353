"""The embedded catalog of images and analyses (SQLite, WAL mode); see :mod:`artlens.catalog.store`."""

from artlens.catalog.store import SCHEMA_VERSION, Catalog, default_catalog_path

__all__ = ["SCHEMA_VERSION", "Catalog", "default_catalog_path"]
