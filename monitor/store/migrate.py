"""Schema migrations (Alembic), run programmatically on the store's own engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine, text

from monitor.errors import StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x6E6D_6D69_6772  # any constant; "nmmigr", unlikely to meet another app's


def _alembic_config() -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, None when it has no schema yet."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def upgrade(engine: Engine) -> None:
    """Bring the schema to this code's head; refuse a database newer than the code.

    On PostgreSQL, instances starting together would race to create the same tables: a
    transaction-scoped advisory lock lets one migrate while the others wait, then find
    the schema at head and do nothing.
    """
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
