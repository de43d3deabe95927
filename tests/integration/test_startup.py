"""What a start costs: `monitor run --once` over feeds that did not change loads no
migration, parsing, signature or template code (Alembic, feedparser, numpy, Jinja2 are
a second of imports on a small machine; a warm pass needs none of them)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, rss, serve

ON_DEMAND = {"alembic", "feedparser", "numpy", "jinja2", "sqlalchemy.dialects.postgresql"}


@pytest.fixture
def server() -> Iterator[FeedServer]:
    yield from serve()


def imported_by(*args: str) -> set[str]:
    """The modules ``python -m monitor ARGS`` imported (from -X importtime)."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [line for line in run.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines[1:]}


def test_a_warm_run_loads_no_migration_parsing_or_template_code(
    server: FeedServer, tmp_path: Path
) -> None:
    server.routes["/wire"] = Feed(rss(("w1", "Seoul keeps GSOMIA", "The pact stays.")))
    config = tmp_path / "monitor.yaml"
    settings = {
        "database": f"sqlite:///{tmp_path}/db.sqlite",
        "sources": [{"name": "wire", "type": "feed", "url": server.url("/wire")}],
        "channels": {
            "box": {"type": "maildir", "path": str(tmp_path / "mail"), "to": ["desk@example.org"]}
        },
        "watchlists": [{"name": "pact", "query": "GSOMIA", "channels": ["box"]}],
    }
    config.write_text(json.dumps(settings))
    cold = imported_by("-c", str(config), "run", "--once")
    warm = imported_by("-c", str(config), "run", "--once")
    assert {"alembic", "feedparser", "numpy", "jinja2"} <= cold
    assert set() == ON_DEMAND & warm
    assert 1 == len(list((tmp_path / "mail" / "new").iterdir()))
