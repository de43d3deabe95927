"""The feeds' TLS context, its CA certificates loaded late, checks certificates as the
context ``httpx.create_ssl_context()`` (``ssl.create_default_context``) made did."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest

from monitor.sources.tls import FeedTLSContext


def test_it_verifies_as_the_default_context_of_this_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python 3.13 made the default context strict (VERIFY_X509_STRICT) and let a
    trusted intermediate anchor a chain (VERIFY_X509_PARTIAL_CHAIN): so must this be,
    before its certificates are loaded as after."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    default = ssl.create_default_context(cafile=certifi.where())
    context = FeedTLSContext(ssl.PROTOCOL_TLS_CLIENT)

    def settings(context: ssl.SSLContext) -> tuple[object, ...]:
        return (
            context.verify_flags,
            context.verify_mode,
            context.check_hostname,
            context.options,
            context.minimum_version,
            context.maximum_version,
        )

    assert settings(default) == settings(context)
    context._load_trust()
    assert settings(default) == settings(context)
