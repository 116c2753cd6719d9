"""The received-mail parser, for any bytes up to 64 KiB: an event JSON carries as it is, or
UnparseableMessage, within seconds (:func:`fuzz.contracts.check_parse`)."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage

import pytest
from hypothesis import example, given

from fuzz import contracts
from mailbridge.mail_worker.domain import parse as received
from mailbridge.mail_worker.domain.parse import UnparseableMessage, parse
from tests import strategies as s


@s.PROPERTIES
@given(s.any_received)
@example(b"From: " + b'"' * 60_000 + b"\r\n\r\n")  # 40 s in the standard library's parser
@example(b"Content-Type: text/plain; a=" + b'"' * 60_000 + b"\r\n\r\n")  # 200 s
@example(b"To: " + b"(" * 60_000 + b"\r\n\r\n")  # RecursionError
@example(b"Message-ID: <\r\n\r\n")  # IndexError
@example(b"From: \xbb\x862\x08N!:\x87\x82\x01\xf5\x06\x1d\xb4\x03\xbb?=\r\nSubject: (\r\n\r\n")
@example(s.nested_messages(1000, "multipart"))  # RecursionError
@example(s.nested_messages(200, "multipart"))  # every line checked against 200 boundaries
@example(b"Content-Type: text/plain; charset=unicode_escape\r\n\r\n\\ud800")  # a lone surrogate
@example(b"Content-Type: text/plain; charset=\x00\r\n\r\nhi")  # ValueError, not LookupError
@example(b"Content-Type: multipart/x; charset=\x00\r\n\r\n\xbc")
@example(
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
    b"Content-Disposition: attachment; filename*=\x00''a\r\n\r\nx\r\n--b--\r\n"
)
def test_any_bytes_are_an_event_or_unparseable(raw: bytes) -> None:
    contracts.check_parse(raw)


def _ordinary(parts: int, depth: int) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@x.example", "b@y.example", "Hi"
    message.set_content("hello")
    inner = message
    for _ in range(depth - 1):
        forwarded = EmailMessage()
        forwarded["Subject"] = "Fwd"
        forwarded.set_content("see attached")
        forwarded.add_attachment(inner)
        inner = forwarded
    for index in range(parts):
        inner.add_attachment(b"x", maintype="application", subtype="pdf", filename=f"{index}.pdf")
    return inner.as_bytes(policy=email.policy.SMTP)


def test_a_digest_of_a_hundred_parts_and_forwards_six_deep_are_read() -> None:
    assert len(parse(_ordinary(100, 1), agent_id="a", uid=1, uidvalidity=1).attachments) == 100
    assert parse(_ordinary(1, 6), agent_id="a", uid=1, uidvalidity=1).subject == "Fwd"


@pytest.mark.parametrize(
    "raw",
    [
        s.wide_messages(received.MAX_PARTS),
        s.nested_messages(received.MAX_DEPTH + 1, "multipart"),
        s.nested_messages(received.MAX_DEPTH + 1, "rfc822"),
    ],
)
def test_more_parts_or_deeper_nesting_than_the_caps_is_refused(raw: bytes) -> None:
    with pytest.raises(UnparseableMessage):
        parse(raw, agent_id="a", uid=1, uidvalidity=1)


def test_a_header_too_long_to_parse_is_read_as_its_text() -> None:
    to = ", ".join(f"Person {i} <p{i}@x.example>" for i in range(100))
    event = parse(f"To: {to}\r\n\r\nhi".encode(), agent_id="a", uid=1, uidvalidity=1)
    assert event.to == [f"p{i}@x.example" for i in range(100)]
    assert event.text == "hi"


def test_a_refused_message_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    raw = s.wide_messages(received.MAX_PARTS)
    assert received.parse_or_none(raw, agent_id="a1", uid=42, uidvalidity=1) is None
    assert "message 42 of agent a1 not delivered" in caplog.text
    ordinary = received.parse_or_none(b"Subject: hi\r\n\r\nx", agent_id="a1", uid=1, uidvalidity=1)
    assert ordinary is not None and ordinary.subject == "hi"
