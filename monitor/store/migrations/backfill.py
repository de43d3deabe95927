"""Filling a new column of ``items`` from each stored row's text, for migrations that add
a hash the code looks rows up by: a row without one would never be found."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

# Rows hashed per round trip: the texts of a round are held in memory at once.
CHUNK = 1000


def fill_items(column: str, source: str, compute: Callable[[str], str]) -> None:
    """Set ``column`` of every stored item to ``compute`` of its ``source`` column, in
    rounds of CHUNK rows by id."""
    connection = op.get_bind()
    items = sa.table("items", sa.column("id"), sa.column(source), sa.column(column))
    fill = (
        items.update()
        .where(items.c.id == sa.bindparam("b_id"))
        .values({column: sa.bindparam("b_value")})
    )
    last = 0
    while True:
        rows = connection.execute(
            sa.select(items.c.id, items.c[source])
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        connection.execute(fill, [{"b_id": row[0], "b_value": compute(row[1])} for row in rows])
        last = rows[-1][0]
