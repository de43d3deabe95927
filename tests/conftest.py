"""Fixtures shared by every test layer."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

REPO = Path(__file__).resolve().parent.parent

# postgres_url: a private PostgreSQL database per test (tests/pg.py).
pytest_plugins = ["pg"]


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The shared corpus folder from MONITOR_CORPUS: skip when unset, fail when missing."""
    value = os.environ.get("MONITOR_CORPUS")
    if not value:
        pytest.skip("MONITOR_CORPUS is not set")
    path = Path(value)
    if not (path / "news" / "articles.jsonl").is_file():
        pytest.fail(f"MONITOR_CORPUS={value} has no news/articles.jsonl")
    return path


@pytest.fixture
def default_config(tmp_path: Path) -> Path:
    """A private copy of the embedded default (config/ and seeds/), returns monitor.yaml."""
    shutil.copytree(REPO / "config", tmp_path / "config")
    shutil.copytree(REPO / "seeds", tmp_path / "seeds")
    return tmp_path / "config" / "monitor.yaml"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging binds to a test's captured stderr: undo it afterwards."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)
