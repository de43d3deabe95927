"""An HTTP server on 127.0.0.1 answering from a thread of its own, as a context manager."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self


class BackgroundServer:
    """Serves ``server`` from ``with`` to its end; then shuts it down and closes it.

    ``stopping`` runs first, for subclasses whose handlers may be waiting on something.
    """

    def __init__(self, server: ThreadingHTTPServer, *, poll_interval: float = 0.5) -> None:
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(poll_interval,), daemon=True
        )

    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def stopping(self) -> None:
        """Called before the server is shut down."""

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stopping()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
