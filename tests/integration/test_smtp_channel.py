"""SmtpChannel against a real aiosmtpd server on 127.0.0.1: plain, STARTTLS, implicit
TLS, AUTH, failures that retry and failures that do not, and connection reuse."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from servers import HOST, Certificates, SmtpServer

from monitor.channels.smtp import SmtpChannel
from monitor.config import SmtpChannelConfig
from monitor.errors import PermanentDeliveryError, TransientDeliveryError
from monitor.model import Message

USERS = {"monitor": "s3cret-pass"}


@pytest.fixture
def certificates(tmp_path: Path) -> Certificates:
    return Certificates.create(tmp_path)


@pytest.fixture
def plain() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def smtp_channel(server: SmtpServer, **settings: Any) -> SmtpChannel:
    config = SmtpChannelConfig.model_validate(
        {
            "type": "smtp",
            "host": HOST,
            "port": server.port,
            "from": "monitor@example.org",
            "to": ["desk@example.org", "duty@example.org"],
            "timeout": "5s",
            **settings,
        }
    )
    return SmtpChannel("desk", config)


def alert(n: int = 1, subject: str = "[gsomia] Seoul talks") -> Message:
    return Message(f"s{n}.gsomia.desk", subject, f"text {n}", f"<p>html {n}</p>")


def test_plain_delivery_is_one_multipart_mail_per_message(plain: SmtpServer) -> None:
    channel = smtp_channel(plain)
    channel.send(alert())
    channel.close()

    [mail] = plain.received()
    assert "monitor@example.org" == mail.sender
    assert ("desk@example.org", "duty@example.org") == mail.recipients
    assert "<s1.gsomia.desk@example.org>" == mail.message["Message-ID"]
    assert "[gsomia] Seoul talks" == mail.message["Subject"]
    parts = [part.get_content_type() for part in mail.message.iter_parts()]
    assert ["text/plain", "text/html"] == parts


def test_an_address_beyond_ascii_goes_by_smtputf8_or_not_at_all(plain: SmtpServer) -> None:
    with pytest.raises(PermanentDeliveryError, match="SMTPUTF8"):
        smtp_channel(plain, to=["rédaction@example.org"]).send(alert())
    with SmtpServer(smtputf8=True) as server:
        channel = smtp_channel(server, to=["rédaction@example.org"])
        channel.send(alert())
        channel.close()

    [mail] = server.received()
    assert ("rédaction@example.org",) == mail.recipients
    assert "rédaction@example.org" == str(mail.message["To"])
    assert [] == plain.received()


def test_lines_starting_with_a_dot_and_a_named_sender_arrive_as_written(
    plain: SmtpServer,
) -> None:
    """The channel's own DATA doubles the dots, and its MAIL FROM and RCPT TO quote each
    address once (the second mail reuses the quoted form)."""
    text = ".\n.leading dot\n..two\nend ."
    channel = smtp_channel(plain, **{"from": "News Desk <monitor@example.org>"})
    for n in range(2):
        channel.send(Message(f"s{n}.gsomia.desk", "dots", text, "<p>.</p>"))
    channel.close()

    for mail in plain.received():
        assert "monitor@example.org" == mail.sender
        assert ("desk@example.org", "duty@example.org") == mail.recipients
        plain_part = next(mail.message.iter_parts())
        assert text + "\n" == plain_part.get_content().replace("\r\n", "\n")
    assert 2 == len(plain.received())


def test_a_burst_shares_one_connection_until_close(plain: SmtpServer) -> None:
    channel = smtp_channel(plain)
    for n in range(5):
        channel.send(alert(n))
    channel.close()
    channel.send(alert(5))
    channel.close()

    peers = [mail.peer for mail in plain.received()]
    assert 6 == len(peers)
    assert 1 == len(set(peers[:5]))
    assert peers[5] != peers[0]


def test_starttls_and_auth(certificates: Certificates) -> None:
    with SmtpServer(security="starttls", certificates=certificates, users=USERS) as server:
        channel = smtp_channel(
            server,
            starttls=True,
            username="monitor",
            password=USERS["monitor"],
            ca_file=str(certificates.ca_file),
        )
        channel.send(alert())
        channel.close()

        assert ["monitor"] == [mail.user for mail in server.received()]


def test_implicit_tls(certificates: Certificates) -> None:
    with SmtpServer(security="tls", certificates=certificates) as server:
        channel = smtp_channel(server, tls=True, ca_file=str(certificates.ca_file))
        channel.send(alert())
        channel.close()

        assert 1 == len(server.received())


def test_an_untrusted_certificate_is_a_dead_letter(certificates: Certificates) -> None:
    with SmtpServer(security="starttls", certificates=certificates) as server:
        channel = smtp_channel(server, starttls=True)  # no ca_file: the test CA is unknown

        with pytest.raises(PermanentDeliveryError, match="certificate not trusted"):
            channel.send(alert())
        assert [] == server.received()


def test_a_wrong_password_is_a_dead_letter_and_never_logged(
    certificates: Certificates, capsys: pytest.CaptureFixture[str]
) -> None:
    with SmtpServer(security="starttls", certificates=certificates, users=USERS) as server:
        channel = smtp_channel(
            server,
            starttls=True,
            username="monitor",
            password="not-the-password",
            ca_file=str(certificates.ca_file),
        )

        with pytest.raises(PermanentDeliveryError, match="535") as raised:
            channel.send(alert())
        assert "not-the-password" not in str(raised.value)
        assert "not-the-password" not in "".join(capsys.readouterr())


def test_starttls_is_never_skipped_when_the_server_lacks_it(plain: SmtpServer) -> None:
    channel = smtp_channel(plain, starttls=True)

    with pytest.raises(PermanentDeliveryError, match="STARTTLS"):
        channel.send(alert())
    assert [] == plain.received()


def test_4xx_retries_5xx_does_not(plain: SmtpServer) -> None:
    channel = smtp_channel(plain)
    plain.fail_next("451 4.3.0 Try again later")
    with pytest.raises(TransientDeliveryError, match="451"):
        channel.send(alert(1))
    plain.fail_next("554 5.7.1 Rejected")
    with pytest.raises(PermanentDeliveryError, match="554"):
        channel.send(alert(2))
    channel.send(alert(3))
    channel.close()

    assert ["<s3.gsomia.desk@example.org>"] == plain.message_ids()


def test_a_server_that_is_down_is_transient() -> None:
    server = SmtpServer()
    channel = smtp_channel(server)  # never started: connection refused

    with pytest.raises(TransientDeliveryError, match=f"smtp {HOST}:{server.port}"):
        channel.send(alert())
    with server:
        channel.send(alert())
        channel.close()
        assert 1 == len(server.received())


def test_a_slow_server_times_out_and_takes_nothing(plain: SmtpServer) -> None:
    channel = smtp_channel(plain, timeout="0.2s")
    with plain.stall(), pytest.raises(TransientDeliveryError, match="timed out"):
        channel.send(alert())
    channel.close()
    # The retry on the usual timeout: 0.2 s per step is for the stall, not for a whole
    # SMTP exchange on a loaded machine.
    again = smtp_channel(plain)
    again.send(alert())
    again.close()

    assert ["<s1.gsomia.desk@example.org>"] == plain.message_ids()


def test_a_dropped_connection_is_reopened_once_within_a_burst(plain: SmtpServer) -> None:
    channel = smtp_channel(plain)
    channel.send(alert(1))
    plain.stop()  # the server goes away between two messages of a burst...
    plain.start()  # ...and is back: the kept connection is dead
    channel.send(alert(2))
    channel.close()

    assert ["<s1.gsomia.desk@example.org>", "<s2.gsomia.desk@example.org>"] == plain.message_ids()


def test_one_recipient_when_the_message_names_one(plain: SmtpServer) -> None:
    channel = smtp_channel(plain)
    channel.send(replace(alert(), recipient="analyst@example.org"))
    channel.close()

    [mail] = plain.received()
    assert ("analyst@example.org",) == mail.recipients
    assert "analyst@example.org" == mail.message["To"]


def test_a_recipient_refused_for_now_gets_the_mail_later_and_the_others_once(
    plain: SmtpServer,
) -> None:
    channel = smtp_channel(plain)
    plain.refuse("duty@example.org", "450 4.2.1 Mailbox busy, try later")
    with pytest.raises(TransientDeliveryError, match=r"duty@example\.org: 450") as refused:
        channel.send(alert())
    assert frozenset({"desk@example.org"}) == refused.value.delivered_to
    channel.send(replace(alert(), delivered_to=refused.value.delivered_to))  # the retry
    channel.close()

    first, retry = plain.received()
    assert (("desk@example.org",), ("duty@example.org",)) == (first.recipients, retry.recipients)
    assert ["<s1.gsomia.desk@example.org>"] * 2 == plain.message_ids()
    assert "desk@example.org, duty@example.org" == retry.message["To"]


def test_a_recipient_refused_for_good_does_not_hold_the_others(plain: SmtpServer) -> None:
    channel = smtp_channel(plain)
    plain.refuse("duty@example.org", "550 5.1.1 No such user")
    channel.send(alert(1))
    channel.send(alert(2))
    channel.close()

    assert [("desk@example.org",), ("desk@example.org", "duty@example.org")] == [
        mail.recipients for mail in plain.received()
    ]
