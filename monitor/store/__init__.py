"""The store: the only code that talks SQL. Its functions return model dataclasses."""

from monitor.store.repo import Store, database_exists, open_store

__all__ = ["Store", "database_exists", "open_store"]
