"""The TLS context feeds are fetched with: CA certificates loaded at the first TLS use.

Parsing the CA bundle takes about 25 ms, a tenth of a pass over 200 unchanged feeds,
and a pass over plain-HTTP feeds never needs it. The context verifies certificates and
host names from the start; until the certificates are loaded it trusts no CA, so a
handshake could only fail, never pass unverified.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
from typing import Any

import certifi


class FeedTLSContext(ssl.SSLContext):
    """``httpx.create_ssl_context()``'s context (the same CA certificates: ``SSL_CERT_FILE``
    or ``SSL_CERT_DIR`` when set, else certifi's bundle), loaded when first used.

    Make it with ``FeedTLSContext(ssl.PROTOCOL_TLS_CLIENT)``.
    """

    _loaded = False
    _load_lock = threading.Lock()

    def __init__(self, protocol: int = ssl.PROTOCOL_TLS_CLIENT) -> None:
        super().__init__()  # the protocol is SSLContext.__new__'s
        # The verification ssl.create_default_context() sets up since Python 3.13.
        if sys.version_info >= (3, 13):
            self.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT

    def wrap_socket(self, sock: socket.socket, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        self._load_trust()
        return super().wrap_socket(sock, *args, **kwargs)

    def wrap_bio(
        self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, *args: Any, **kwargs: Any
    ) -> ssl.SSLObject:
        self._load_trust()
        return super().wrap_bio(incoming, outgoing, *args, **kwargs)

    def _load_trust(self) -> None:
        if self._loaded:
            return
        with self._load_lock:
            if not self._loaded:
                if os.environ.get("SSL_CERT_FILE"):
                    self.load_verify_locations(cafile=os.environ["SSL_CERT_FILE"])
                elif os.environ.get("SSL_CERT_DIR"):
                    self.load_verify_locations(capath=os.environ["SSL_CERT_DIR"])
                else:
                    self.load_verify_locations(cafile=certifi.where())
                self._loaded = True
