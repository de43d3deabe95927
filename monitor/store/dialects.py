"""The dialect's own INSERT (with ON CONFLICT), imported for the engine in use only:
PostgreSQL's dialect costs 50 ms of imports a SQLite user never needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

    DialectInsert = PostgresqlInsert | SqliteInsert


def insert_for(dialect: str) -> Callable[[Any], DialectInsert]:
    """``sqlalchemy.dialects.<dialect>.insert``: PostgreSQL's, else SQLite's."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
