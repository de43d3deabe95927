"""Real servers on 127.0.0.1 for tests and benchmarks: SMTP (aiosmtpd) and a webhook receiver.

Both run in a thread, keep their port when stopped and started again (an outage the
code under test must ride out), record exactly what they accepted, and can be told to
fail: the next N requests get a given reply, or every request stalls until released.

- ``SmtpServer``: plain, STARTTLS or implicit TLS (certificates from ``Certificates``,
  a throwaway trustme CA), optional AUTH against a user table.
- ``WebhookReceiver``: takes POSTs, checks the Standard Webhooks signature with the
  ``standardwebhooks`` package when it has a secret (401 if it does not verify),
  and records each accepted request.

A stalled request is never accepted: it is answered 503 when released, as a server that
gave up would. So "accepted" is always exactly what the client was told was accepted.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.policy
import json
import secrets
import socket
import ssl
import threading
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, cast

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

HOST = "127.0.0.1"
STALL_POLL = 0.01  # seconds between checks of a stalled SMTP session's release


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA and a certificate for 127.0.0.1 / localhost signed by it."""

    ca_file: Path
    server_context: ssl.SSLContext

    @classmethod
    def create(cls, folder: Path) -> Certificates:
        authority = trustme.CA()
        ca_file = folder / "test-ca.pem"
        authority.cert_pem.write_to_path(str(ca_file))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert(HOST, "localhost").configure_cert(context)
        return cls(ca_file, context)


class _Switches:
    """Scripted failures shared by both servers: queued replies and a stall gate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._replies: deque[Any] = deque()
        self._released = threading.Event()
        self._released.set()

    def queue(self, reply: Any, times: int) -> None:
        with self._lock:
            self._replies.extend([reply] * times)

    def next_reply(self) -> Any | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    @property
    def stalled(self) -> bool:
        return not self._released.is_set()

    def wait_released(self) -> None:
        self._released.wait()

    def release(self) -> None:
        self._released.set()

    @contextlib.contextmanager
    def stall(self) -> Iterator[None]:
        self._released.clear()
        try:
            yield
        finally:
            self.release()


class _Server(ABC):
    """Start/stop on a fixed port, as a context manager."""

    port: int

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- SMTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    """One message the SMTP server accepted (replied 250 to)."""

    sender: str
    recipients: tuple[str, ...]
    raw: bytes
    peer: tuple[str, int]  # the client's address: one per connection
    user: str | None  # who authenticated, if anyone

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)


class _SmtpHandler:
    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.owner.waiting += 1
        try:
            while self.owner.switches.stalled:
                await asyncio.sleep(STALL_POLL)
        finally:
            self.owner.waiting -= 1
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        refusal = self.owner.refusal(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self.owner.switches.next_reply()
        if reply is not None:
            return str(reply)
        content = envelope.original_content or b""
        host, port = cast(Any, session.peer)[:2]  # typed as a str, is (host, port)
        login = cast(LoginPassword, session.auth_data) if session.authenticated else None
        user = login.login.decode() if login else None
        mail = ReceivedMail(
            envelope.mail_from or "", tuple(envelope.rcpt_tos), content, (host, port), user
        )
        with self.owner.lock:
            self.owner.mails.append(mail)
        return "250 2.0.0 Message accepted"


class SmtpServer(_Server):
    """aiosmtpd on 127.0.0.1.

    ``security``: ``plain``, ``starttls`` (offered, and required when there are users)
    or ``tls`` (implicit TLS from the first byte). ``users`` turns on AUTH, ``smtputf8``
    the SMTPUTF8 extension (addresses beyond ASCII).
    """

    def __init__(
        self,
        *,
        security: Literal["plain", "starttls", "tls"] = "plain",
        certificates: Certificates | None = None,
        users: Mapping[str, str] | None = None,
        port: int | None = None,
        smtputf8: bool = False,
    ) -> None:
        if security != "plain" and certificates is None:
            raise ValueError(f"security={security!r} needs certificates")
        self.security = security
        self.certificates = certificates
        self.users = dict(users or {})
        self.smtputf8 = smtputf8
        self.port = port or free_port()
        self.switches = _Switches()
        self.waiting = 0  # sessions whose MAIL FROM waits for a stall to end
        self.lock = threading.Lock()
        self.mails: list[ReceivedMail] = []
        self._refusals: dict[str, list[str]] = {}
        self._controller: Controller | None = None

    def start(self) -> None:
        if self._controller is not None:
            return
        context = self.certificates.server_context if self.certificates else None
        options: dict[str, Any] = {"ident": "test-smtp", "enable_SMTPUTF8": self.smtputf8}
        if self.security == "starttls":
            options.update(tls_context=context, require_starttls=bool(self.users))
        if self.users:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.security != "plain",
            )
        self._controller = Controller(
            _SmtpHandler(self),
            hostname=HOST,
            port=self.port,
            ssl_context=context if self.security == "tls" else None,
            server_hostname="localhost",
            **options,
        )
        self._controller.start()

    def stop(self) -> None:
        if self._controller is None:
            return
        self._controller.stop()  # cancels every session, stalled ones included
        self._controller = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        known = self.users.get(data.login.decode()) if isinstance(data, LoginPassword) else None
        ok = known is not None and secrets.compare_digest(known, data.password.decode())
        # handled=False: aiosmtpd answers 535 itself when the login fails.
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def fail_next(self, reply: str, times: int = 1) -> None:
        """Answer the next ``times`` messages with ``reply`` (e.g. ``451 4.3.0 busy``)."""
        self.switches.queue(reply, times)

    def refuse(self, address: str, reply: str, times: int = 1) -> None:
        """Answer the next ``times`` RCPT TO for ``address`` with ``reply`` (e.g. ``450
        4.2.1 Mailbox busy``); the other recipients of those mails are taken."""
        with self.lock:
            self._refusals.setdefault(address, []).extend([reply] * times)

    def refusal(self, address: str) -> str | None:
        with self.lock:
            replies = self._refusals.get(address)
            return replies.pop(0) if replies else None

    def stall(self) -> contextlib.AbstractContextManager[None]:
        """Inside this block every MAIL FROM waits: clients time out, nothing is accepted."""
        return self.switches.stall()

    def received(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self.mails)

    def message_ids(self) -> list[str]:
        return [str(mail.message["Message-ID"]) for mail in self.received()]


# --- webhooks --------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedHook:
    """One webhook POST the receiver accepted (answered 2xx)."""

    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    peer: tuple[str, int]

    @property
    def id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes = b""


class _HookServer(ThreadingHTTPServer):
    """Tracks live connections so ``stop`` can cut them, as a crashed server would."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__((HOST, receiver.port), _HookHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up on us is part of the tests, not an error."""


class _HookHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is observable
    disable_nagle_algorithm = True  # headers and body go out as written, no ACK wait
    server: _HookServer

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if receiver.switches.stalled:
            receiver.switches.wait_released()
            self._reply(Reply(503, {}))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        hook = ReceivedHook(self.path, headers, body, self.client_address)
        if receiver.on_request is not None:
            receiver.on_request()
        choking = receiver.choking_on
        reply = (
            choking[1]
            if choking is not None and choking[0] in body
            else cast(Reply | None, receiver.switches.next_reply()) or receiver.verify(hook)
        )
        if 200 <= reply.status < 300:
            receiver.record(hook)
        self._reply(reply)

    def _reply(self, reply: Reply) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``received``, not stderr."""


class WebhookReceiver(_Server):
    """A loopback HTTP endpoint for webhooks. With a ``secret`` it accepts only requests
    whose Standard Webhooks signature verifies; the others get 401 and land in
    ``rejected``."""

    def __init__(self, secret: str | None = None, *, port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.switches = _Switches()
        self.lock = threading.Lock()
        self.hooks: list[ReceivedHook] = []
        self.rejected: list[str] = []
        self.choking_on: tuple[bytes, Reply] | None = None
        self.on_request: Callable[[], object] | None = None  # called before each answer
        self._server: _HookServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/hook"

    def start(self) -> None:
        if self._server is not None:
            return
        self._server = _HookServer(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.shutdown()
        self._server.cut_connections()
        self.switches.release()
        self._server.server_close()  # joins the handler threads
        self._thread.join()
        self._server = None
        self._thread = None

    def verify(self, hook: ReceivedHook) -> Reply:
        if self.secret is None:
            return Reply(204, {})
        try:
            Webhook(self.secret).verify(hook.body, hook.headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.rejected.append(f"{hook.id}: {exc}")
            return Reply(401, {"content-type": "text/plain"}, b"bad signature")
        return Reply(204, {})

    def record(self, hook: ReceivedHook) -> None:
        with self.lock:
            self.hooks.append(hook)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"scripted failure",
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``headers``, ``body``)."""
        self.switches.queue(Reply(status, dict(headers or {}), body), times)

    def choke_on(self, text: bytes, status: int = 500) -> None:
        """Answer every request whose body holds ``text`` with ``status``, for good: a
        receiver with a bug that one payload sets off."""
        self.choking_on = (text, Reply(status, {}, b"internal error"))

    def stall(self) -> contextlib.AbstractContextManager[None]:
        """Inside this block requests wait: clients time out, nothing is accepted."""
        return self.switches.stall()

    def received(self) -> list[ReceivedHook]:
        with self.lock:
            return list(self.hooks)

    def ids(self) -> list[str]:
        return [hook.id for hook in self.received()]
