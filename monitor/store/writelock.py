"""One writer at a time inside the process, for SQLite.

SQLite lets one connection write at a time; a connection that finds the database locked
waits in SQLite's busy handler, which *sleeps* in growing steps (1, 2, 5 ... 100 ms) and
retries. With a dozen threads each writing a little per poll (the source lease, then the
poll's results), most of their time went to those sleeps: 500 feeds polled every 2 s
managed 77 polls a second of the 250 due, at half a core, and lag grew without end.

So a process-wide lock is taken just before a connection's first write statement (the
moment SQLite takes its write lock) and released when the transaction ends: waiting
threads are woken as soon as the writer commits. Reads never take it (WAL readers do not
block writers), and another process writing the same file still meets SQLite's own lock.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import Connection, Engine, event

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_HELD = "monitor_write_lock_held"
# A write nested in another on the same thread would wait for itself: after this long,
# go on without the lock and let SQLite's busy timeout decide, as before.
_PATIENCE = 60.0


def serialize_writers(engine: Engine) -> None:
    """Install the lock on ``engine`` (an SQLite engine; PostgreSQL needs none)."""
    lock = threading.Lock()

    def before_execute(connection: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if not connection.info.get(_HELD) and statement.lstrip()[:7].upper().startswith(_WRITES):
            connection.info[_HELD] = lock.acquire(timeout=_PATIENCE)

    def end(connection: Connection) -> None:
        if connection.info.pop(_HELD, False):
            lock.release()

    event.listen(engine, "before_cursor_execute", before_execute)
    event.listen(engine, "commit", end)
    event.listen(engine, "rollback", end)
