"""The catalog of images, artworks, analyses and jobs, on SQLite (embedded default) or PostgreSQL;
see :mod:`artlens.catalog.store`."""

from artlens.catalog.store import SCHEMA_VERSION, Catalog, catalog_location, default_catalog_path, is_database_url

__all__ = ["SCHEMA_VERSION", "Catalog", "catalog_location", "default_catalog_path", "is_database_url"]
