"""A private PostgreSQL database for each test, on the server ``MONITOR_TEST_POSTGRES`` names.

``.ci/run`` sets ``MONITOR_TEST_POSTGRES``, so these tests run in CI; outside it they skip.
Each database gets a random name, is created through the ``postgres`` maintenance database
and dropped (connections and all) afterwards, so runs on one server never collide.

The root conftest loads this module as a plugin, so ``postgres_url`` is a fixture
everywhere; mark tests that use it ``pytest.mark.postgres``. ``race`` runs workers (one
per instance) released together, for the races several instances on one database run.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

ENV = "MONITOR_TEST_POSTGRES"
T = TypeVar("T")


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A new, empty database on ``server_url``'s server; yields its URL, drops it after."""
    server = make_url(server_url)
    name = f"monitor_test_{secrets.token_hex(6)}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
            # Commits stop waiting for the disk: a test database need not survive a crash
            # of the server, and many tests commit per row (deliveries, leases).
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The server URL from the environment; skip when unset (outside ``.ci/run``)."""
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(f"{ENV} is not set")
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh database for one test."""
    with scratch_database(postgres_server) as url:
        yield url


def race(workers: int, work: Callable[[int], T]) -> list[T]:
    """``work(0) .. work(workers - 1)`` in threads released together; their results."""
    start = threading.Barrier(workers)

    def run(n: int) -> T:
        start.wait()
        return work(n)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, range(workers)))
