"""Schema migrations (Alembic), run programmatically on the store's own engine.

Every start brings the schema to head, and nearly every start finds it there already: the
stored revision is compared with the head named in the migration files first, and Alembic
(a quarter of a second of imports, a third of a warm `monitor run --once`) is loaded only
when they differ or the comparison cannot be made.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x6E6D_6D69_6772  # any constant; "nmmigr", unlikely to meet another app's
_REVISION = re.compile(r"^revision\s*(?::[^=\n]*)?=\s*[\"']([^\"'\n]+)[\"']\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(
    r"^down_revision\s*(?::[^=\n]*)?=\s*(?:None|[\"']([^\"'\n]+)[\"'])\s*$", re.MULTILINE
)


def _alembic_config() -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, None when it has no schema yet."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


@cache
def known_head() -> str | None:
    """The head revision read from the migration files' ``revision`` and
    ``down_revision`` lines, without Alembic; None unless every file reads plainly and
    there is exactly one head (a merge, a branch or an odd file leave it to Alembic)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("[!_]*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        if down.group(1):
            parents.add(down.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """Whether the database is certainly at this code's head already."""
    head = known_head()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            stored = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except SQLAlchemyError:  # no schema yet: Alembic creates it
        return False
    return [(head,)] == [tuple(row) for row in stored]


def upgrade(engine: Engine) -> None:
    """Bring the schema to this code's head; refuse a database newer than the code.

    On PostgreSQL, instances starting together would race to create the same tables: a
    transaction-scoped advisory lock lets one migrate while the others wait, then find
    the schema at head and do nothing.
    """
    if _at_head(engine):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    config = _alembic_config()
    script = ScriptDirectory.from_config(config)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None:
            try:
                script.get_revision(current)
            except CommandError as exc:
                raise StoreError(
                    f"the database schema ({current}) is newer than this version of "
                    f"news-monitor knows (head {script.get_current_head()}); upgrade news-monitor"
                ) from exc
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
