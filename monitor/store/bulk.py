"""Many rows of plain values (integers, text) inserted with the driver's own executemany.

SQLAlchemy turns every row of an executemany into parameters in Python (about 3 us a
row) before sqlite3 binds it in C; for the story bands, 16 rows per new story, that was
most of the cost of creating a story. On SQLite the rows go to sqlite3 as they are.
PostgreSQL keeps SQLAlchemy's way: its "insertmanyvalues" sends a multi-row INSERT per
page, where the driver's executemany would run the statement once per row on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Insert
from sqlalchemy.dialects import sqlite


def insert_many(
    connection: Connection,
    statement: Insert,
    columns: tuple[str, ...],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Run ``statement`` (no RETURNING) for each of ``rows``, values in ``columns`` order."""
    if not rows:
        return
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(_sqlite_sql(statement, columns), list(rows))
    else:
        connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])


@cache
def _sqlite_sql(statement: Insert, columns: tuple[str, ...]) -> str:
    """The statement as sqlite3 takes it, with positional parameters in ``columns`` order.
    Only for columns whose values need no conversion on the way in: the driver gets them
    exactly as given, where SQLAlchemy would apply the column types' bind processing."""
    compiled = statement.compile(dialect=sqlite.dialect())
    if list(compiled.positiontup or ()) != list(columns) or compiled._bind_processors:
        raise ValueError(f"not a plain insert of {columns}: {compiled.string}")
    return compiled.string
