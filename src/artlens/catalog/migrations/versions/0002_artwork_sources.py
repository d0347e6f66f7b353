"""Schema version 2: where an artwork came from (``artlens collect``): source, its id there, licence, labels.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = ("source", "source_id", "license", "source_url", "medium", "classification", "style", "genre")


def upgrade() -> None:
    for column in COLUMNS:
        op.add_column("artworks", sa.Column(column, sa.Text))
    # One artwork per (source, source_id): collecting twice adds nothing.
    op.create_index(
        "artworks_source", "artworks", ["source", "source_id"], unique=True,
        sqlite_where=sa.text("source IS NOT NULL"), postgresql_where=sa.text("source IS NOT NULL"),
    )
    op.execute("UPDATE schema_version SET version = 2")


def downgrade() -> None:
    raise NotImplementedError("artlens catalogs are never downgraded; restore a backup instead")
