"""Alembic environment of the artlens catalog.

artlens runs its migrations itself, from :meth:`artlens.catalog.Catalog.migrate`: it opens the
database, takes the write lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL) and
hands that connection over in ``config.attributes["connection"]``. The whole upgrade then runs in the
caller's transaction, so it either completes or leaves the catalog as it was. There is no alembic.ini
and no offline (``--sql``) mode.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the artlens catalog is migrated by artlens.catalog.Catalog.migrate(), not by the alembic CLI")

context.configure(connection=connection)
with context.begin_transaction():  # inside the caller's transaction: alembic neither begins nor commits
    context.run_migrations()
