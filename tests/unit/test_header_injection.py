"""Header injection is refused twice, independently: the values are checked as the mail library will
decode them, and the serialized bytes are read back before anything is sent."""

from __future__ import annotations

import base64
import email.policy
from email import message_from_bytes

import pytest
from pydantic import ValidationError

from mailbridge.config_api.domain.outgoing import OutgoingMessageIn
from mailbridge.mail_worker.domain import mime, serialized
from mailbridge.shared.errors import ErrorCode, PermanentError
from mailbridge.shared.headers import HeaderValueError, check_header_text
from mailbridge.shared.messages import Attachment, SendMessage
from tests.fakes.clock import FixedClock

INJECTED = "Hello\r\nBcc: evil@evil.example"
ENCODED_B = f"=?utf-8?B?{base64.b64encode(INJECTED.encode()).decode()}?="
ENCODED_Q = "=?utf-8?Q?Hello=0D=0ABcc:_evil@evil.example?="


def command(**fields: object) -> SendMessage:
    base: dict[str, object] = {"to": ["ada@x.example"], "subject": "Hi", "text": "hello"}
    return SendMessage(agent_id="a1", command_id="cmd_1", **(base | fields))


def build(cmd: SendMessage) -> mime.Outgoing:
    return mime.build(cmd, sender="s@x.example", now=FixedClock().now())


@pytest.mark.parametrize(
    "value",
    [
        ENCODED_B,
        ENCODED_Q,
        "=?iso-8859-1?q?a=0Ab?=",
        "=?utf-16?B?AEEA?=",
        "a\u2028b",
        "a\x0bb",
        "\ud800",
    ],
)
def test_a_value_that_decodes_to_a_line_break_or_control_is_refused(value: str) -> None:
    with pytest.raises(HeaderValueError):
        check_header_text(value, "subject")


@pytest.mark.parametrize("value", ["Grüße", "=?utf-8?B?4oKsIDEwMA==?=", "tab\there", "50% off"])
def test_ordinary_text_and_harmless_encoded_words_pass(value: str) -> None:
    assert check_header_text(value, "subject") == value


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": ENCODED_B},
        {"in_reply_to": f"<a@b> {ENCODED_B}"},
        {"in_reply_to": "not-a-message-id"},
        {"references": [f"<a@b> {ENCODED_B}"]},
        {"references": ["<a@b>\r\nBcc: evil@evil.example"]},
        {"to": [f"{ENCODED_B} <ada@x.example>"]},
        {"attachments": [Attachment(filename="utf-8''%0D%0ABcc", content_base64="aGk=")]},
        {
            "attachments": [
                Attachment(filename="a", content_type="text/plain\r\nX: y", content_base64="")
            ]
        },
    ],
)
def test_the_builder_refuses_every_injecting_field(fields: dict[str, object]) -> None:
    with pytest.raises(PermanentError) as refused:
        build(command(**fields))
    assert refused.value.code is ErrorCode.INVALID_INPUT


def test_without_the_input_check_the_serialized_check_still_refuses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CPython bug itself: this Python serializes the decoded CR LF (gh-121650); were the input
    check ever to miss a value, the read-back of the bytes stops the send."""
    monkeypatch.setattr(mime, "_refuse_unsafe_headers", lambda *_: None)
    with pytest.raises(PermanentError) as refused:
        build(command(subject=ENCODED_B))
    assert refused.value.code is ErrorCode.INVALID_INPUT
    assert "bcc" in str(refused.value).lower()


def _meant(**changes: object) -> serialized.Intended:
    base = serialized.Intended(
        headers={"message-id": "<m@x.example>", "subject": "Hi"},
        sender=["s@x.example"],
        to=["ada@x.example"],
        cc=[],
        filenames=[],
    )
    return serialized.Intended(**(base.__dict__ | changes))


GOOD = (
    b"Message-ID: <m@x.example>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: s@x.example\r\n"
    b"To: ada@x.example\r\nSubject: Hi\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n"
)


def test_the_read_back_accepts_exactly_the_intended_message() -> None:
    serialized.verify(GOOD, _meant())


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (GOOD.replace(b"Subject: Hi\r\n", b"Subject: Hi\r\nBcc: evil@x.io\r\n"), "unexpected"),
        (GOOD.replace(b"Subject: Hi\r\n", b"Subject: Hi\r\nReply-To: evil@x.io\r\n"), "unexpected"),
        (
            GOOD.replace(b"From: s@x.example\r\n", b"From: s@x.example\r\nFrom: e@x.io\r\n"),
            "repeats",
        ),
        (GOOD.replace(b"To: ada@x.example", b"To: ada@x.example, evil@x.io"), "other to"),
        (GOOD.replace(b"Subject: Hi", b"Subject: Hi there"), "subject"),
        (GOOD.replace(b"Content-Type", b"X-Evil: 1\r\nContent-Type"), "unexpected"),
    ],
)
def test_the_read_back_refuses_any_other_header_block(raw: bytes, problem: str) -> None:
    with pytest.raises(PermanentError) as refused:
        serialized.verify(raw, _meant())
    assert problem in str(refused.value).lower()
    assert refused.value.code is ErrorCode.INVALID_INPUT


def test_a_long_encoded_subject_and_filename_round_trip() -> None:
    subject = "Grüße aus Köln — " * 12
    filename = "Überweisung März 2024 " * 5 + ".pdf"
    built = build(
        command(subject=subject, attachments=[Attachment(filename=filename, content_base64="aGk=")])
    )
    parsed = message_from_bytes(built.as_bytes(), policy=email.policy.default)
    assert " ".join(str(parsed["Subject"]).split()) == " ".join(subject.split())
    assert [p.get_filename() for p in parsed.iter_attachments()] == [filename]


@pytest.mark.parametrize(
    "address",
    [
        "ada@example.com.",  # a fully qualified domain
        '"ada"@example.com',
        "Ada <ada@example.com>, bob@example.com",
        "Ada <ada@example.com",  # the angle bracket left open
        "=[\t@@é,<.",  # once an IndexError deep in the standard library's parser
        "(@ :).<;",  # once a TypeError
        f"{ENCODED_B} <ada@example.com>",
        "a" * 65 + "@example.com",
    ],
)
def test_http_and_nats_accept_the_same_addresses(address: str) -> None:
    assert _http_refusal(address) == _worker_refusal(address)


def _http_refusal(address: str) -> bool:
    """Whether the API refuses it, and then as a 422 naming the field, never a 500."""
    try:
        OutgoingMessageIn(to=[address], text="hi")
    except ValidationError as exc:
        return exc.errors()[0]["loc"][:1] == ("to",)
    return False


def _worker_refusal(address: str) -> bool:
    try:
        build(command(to=[address]))
    except PermanentError as exc:
        return exc.code is ErrorCode.INVALID_INPUT
    return False
