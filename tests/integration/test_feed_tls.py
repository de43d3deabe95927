"""Feeds over HTTPS from a real TLS server on 127.0.0.1: verified against the trusted CA
certificates (``SSL_CERT_FILE`` when set), which a pass over plain-HTTP feeds never loads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from feedserver import Feed, FeedServer, feed_app, rss
from servers import Certificates

from monitor.app import App
from monitor.pipeline import poll_source
from monitor.sources.feed import FeedSource
from monitor.sources.http import HttpPool

NEWS = rss(("t1", "Secure news", "Served over TLS."))


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates.create(tmp_path)


@pytest.fixture
def tls_server(certificates: Certificates) -> Iterator[FeedServer]:
    with FeedServer(tls=certificates.server_context) as server:
        server.routes["/news"] = Feed(NEWS)
        yield server


def _app_with_own_pool(tmp_path: Path, url: str) -> tuple[App, HttpPool]:
    """An App whose one source ``news`` polls ``url`` through a pool of its own (the
    shared pool may have loaded its certificates in another test)."""
    app = feed_app(tmp_path, [{"name": "news", "url": url}], [])
    pool = HttpPool()
    app.sources["news"] = FeedSource(app.source_configs["news"], pool)  # type: ignore[arg-type]
    return app, pool


def _trusted_cas(pool: HttpPool) -> int:
    context = pool.transport._pool._ssl_context  # type: ignore[attr-defined]
    return int(context.cert_store_stats()["x509_ca"])


def test_a_feed_over_https_is_read_when_its_ca_is_trusted(
    tls_server: FeedServer,
    certificates: Certificates,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    url = tls_server.url("/news")
    assert url.startswith("https://127.0.0.1:")
    app, pool = _app_with_own_pool(tmp_path, url)
    try:
        assert 0 == _trusted_cas(pool)  # nothing loaded before a TLS connection
        outcome = poll_source(app, "news", force=True)
        titles = [item.title for item in app.store.items()]
        assert 1 == _trusted_cas(pool)  # the test CA, and only it
    finally:
        app.close()
        pool.close()
    assert outcome.ok, outcome.error
    assert ["Secure news"] == titles


def test_a_certificate_from_an_untrusted_ca_is_a_source_error(
    tls_server: FeedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    app, pool = _app_with_own_pool(tmp_path, tls_server.url("/news"))
    try:
        outcome = poll_source(app, "news", force=True)
        stored = list(app.store.items())
        state = app.store.source_state("news")
        trusted = _trusted_cas(pool)
    finally:
        app.close()
        pool.close()
    assert not outcome.ok
    assert "CERTIFICATE_VERIFY_FAILED" in (state.last_error or "")
    assert [] == stored
    assert trusted > 100  # certifi's bundle, loaded for the handshake


def test_a_pass_over_plain_http_feeds_loads_no_certificates(tmp_path: Path) -> None:
    with FeedServer() as server:
        server.routes["/news"] = Feed(NEWS)
        app, pool = _app_with_own_pool(tmp_path, server.url("/news"))
        try:
            outcome = poll_source(app, "news", force=True)
            trusted = _trusted_cas(pool)
        finally:
            app.close()
            pool.close()
    assert outcome.ok, outcome.error
    assert 0 == trusted
