"""The catalog's tables, defined once for every backend (SQLite and PostgreSQL).

This is the schema as the newest migration leaves it (:data:`SCHEMA_VERSION`). The migrations in
``artlens/catalog/migrations/versions/`` build it step by step and never import this module, so an
old step keeps meaning what it meant; ``tests/catalog/test_migrations.py`` checks that the two agree.

Types are deliberately plain so both backends return the same Python values: times are ISO 8601
text in UTC, JSON documents are text (decoded by :class:`~artlens.catalog.Catalog`), flags are 0/1
integers.
"""

from __future__ import annotations

import sqlalchemy as sa

SCHEMA_VERSION = 3
"""The schema version this artlens writes: the number of the newest migration (revision ``"0003"``)."""

metadata = sa.MetaData()

artworks = sa.Table(
    "artworks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("title", sa.Text),
    sa.Column("artist", sa.Text),
    sa.Column("date", sa.Text),  # free text, as the source gives it ("ca. 1889")
    sa.Column("notes", sa.Text),
    sa.Column("source", sa.Text),  # where the record came from ("met") and its id there
    sa.Column("source_id", sa.Text),
    sa.Column("license", sa.Text),
    sa.Column("source_url", sa.Text),
    sa.Column("medium", sa.Text),
    sa.Column("classification", sa.Text),
    sa.Column("style", sa.Text),
    sa.Column("genre", sa.Text),
    sa.Index(
        "artworks_source", "source", "source_id", unique=True,
        sqlite_where=sa.text("source IS NOT NULL"), postgresql_where=sa.text("source IS NOT NULL"),
    ),
)

images = sa.Table(
    "images",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("path", sa.Text, nullable=False),  # absolute
    sa.Column("sha256", sa.Text, nullable=False),
    sa.Column("modality", sa.Text, nullable=False),  # xray, rgb, ir, band@NNNnm
    sa.Column("px_per_cm", sa.Float),
    sa.Column("width_px", sa.Integer),
    sa.Column("height_px", sa.Integer),
    sa.Column("artwork_id", sa.Integer, sa.ForeignKey("artworks.id", ondelete="SET NULL")),
    sa.Column("added_utc", sa.Text, nullable=False),
    sa.UniqueConstraint("path", "sha256"),
)

analyses = sa.Table(
    "analyses",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="SET NULL")),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),  # JSON
    sa.Column("artlens_version", sa.Text, nullable=False),
    sa.Column("model_checksum", sa.Text),
    sa.Column("summary", sa.Text, nullable=False),  # JSON
    sa.Column("outputs", sa.Text, nullable=False),  # JSON list of paths
    sa.Column("created_utc", sa.Text, nullable=False),
    sa.Index("analyses_method", "method"),
    sa.Index("analyses_image", "image_id"),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="SET NULL")),
    sa.Column("params", sa.Text, nullable=False),  # JSON
    sa.Column("state", sa.Text, nullable=False),  # queued, running, done, failed, cancelled
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("message", sa.Text),
    sa.Column("result", sa.Text),  # JSON
    sa.Column("error", sa.Text),
    sa.Column("analysis_id", sa.Integer, sa.ForeignKey("analyses.id", ondelete="SET NULL")),
    sa.Column("worker", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cancel_requested", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_utc", sa.Text, nullable=False),
    sa.Column("started_utc", sa.Text),
    sa.Column("finished_utc", sa.Text),
    sa.Index("jobs_state", "state"),
)

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)
"""One row holding :data:`SCHEMA_VERSION`. Alembic's ``alembic_version`` table is the authority; this
mirror lets artlens releases from before the Alembic port open a catalog of the same version, or refuse
a newer one cleanly, instead of calling it a foreign database."""

TABLES = {"artworks": artworks, "images": images, "analyses": analyses, "jobs": jobs}
"""The tables users see (``artlens catalog export --table``)."""
