"""What differs between the dialects: their own INSERT (with ON CONFLICT), imported for
the engine in use only (PostgreSQL's dialect costs 50 ms of imports a SQLite user never
needs), and how a list of values is passed as one parameter."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import ARRAY, JSON, ColumnElement, any_, bindparam, func, select

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


def in_values(column: ColumnElement[Any], name: str, dialect: str) -> ColumnElement[bool]:
    """``column IN`` the values of the one list parameter ``name``.

    An expanding IN renders a parameter per value at every execution, and each length is
    a new statement for the database to compile: with the hundreds of band hashes of a
    poll, that cost more than the lookup itself. A single parameter keeps one statement:
    a PostgreSQL array, or on SQLite a JSON array read by ``json_each``.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(column.type)))
    values = func.json_each(bindparam(name, type_=JSON)).table_valued("value")
    return column.in_(select(values.c.value))
