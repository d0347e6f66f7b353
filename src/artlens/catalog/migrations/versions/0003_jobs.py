"""Schema version 3: background jobs (the web app's analyses), a queue that survives a killed server.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="SET NULL")),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("progress", sa.Float, nullable=False, server_default="0"),
        sa.Column("message", sa.Text),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("analysis_id", sa.Integer, sa.ForeignKey("analyses.id", ondelete="SET NULL")),
        sa.Column("worker", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cancel_requested", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_utc", sa.Text, nullable=False),
        sa.Column("started_utc", sa.Text),
        sa.Column("finished_utc", sa.Text),
    )
    op.create_index("jobs_state", "jobs", ["state"])
    op.execute("UPDATE schema_version SET version = 3")


def downgrade() -> None:
    raise NotImplementedError("artlens catalogs are never downgraded; restore a backup instead")
