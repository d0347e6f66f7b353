"""Schema version 1: artworks, images and the analyses run on them.

The same tables as the raw-sqlite3 catalog of artlens before the Alembic port (its ``_v1``), so a
catalog written by that code is adopted by stamping it with this revision.

Revision ID: 0001
Revises: none
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "artworks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text),
        sa.Column("artist", sa.Text),
        sa.Column("date", sa.Text),
        sa.Column("notes", sa.Text),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("modality", sa.Text, nullable=False),
        sa.Column("px_per_cm", sa.Float),
        sa.Column("width_px", sa.Integer),
        sa.Column("height_px", sa.Integer),
        sa.Column("artwork_id", sa.Integer, sa.ForeignKey("artworks.id", ondelete="SET NULL")),
        sa.Column("added_utc", sa.Text, nullable=False),
        sa.UniqueConstraint("path", "sha256"),
    )
    op.create_table(
        "analyses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="SET NULL")),
        sa.Column("method", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("artlens_version", sa.Text, nullable=False),
        sa.Column("model_checksum", sa.Text),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("outputs", sa.Text, nullable=False),
        sa.Column("created_utc", sa.Text, nullable=False),
    )
    op.create_index("analyses_method", "analyses", ["method"])
    op.create_index("analyses_image", "analyses", ["image_id"])
    # The pre-Alembic version marker, kept in step (see artlens.catalog.schema.schema_version).
    op.create_table("schema_version", sa.Column("version", sa.Integer, nullable=False))
    op.execute("INSERT INTO schema_version (version) VALUES (1)")


def downgrade() -> None:
    raise NotImplementedError("artlens catalogs are never downgraded; restore a backup instead")
