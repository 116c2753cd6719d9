"""One fuzz target per entry point: bytes in, its contract checked (:mod:`.contracts`).

A target only decodes the fuzzer's bytes into the entry point's arguments, so a corpus file is
readable and can be written by hand: text is UTF-8 (an undecodable byte becomes a lone surrogate,
as the standard library reads raw header bytes), and the bytes ``\\xff`` and ``\\xfe``, never part
of UTF-8, separate the values of a list and the fields of a command. Nothing here needs atheris:
``tests/unit/test_fuzz_corpus.py`` replays the corpus through these very functions.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from fuzz import contracts
from mailbridge.config_api.domain.autoconfig import MAX_DOCUMENT
from mailbridge.mail_worker.domain.lookalike import Sender
from mailbridge.shared.messages import Attachment, SendMessage

FIELD, ITEM = b"\xff", b"\xfe"
RECEIVED_MAX = 64 * 1024  # the size the received-mail contract is stated for


def text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def encode_text(value: str) -> bytes:
    """The inverse of :func:`text`, for seeds: a lone surrogate other than an escaped byte is
    written as UTF-8 would write it, which :func:`text` reads back as three escaped bytes."""
    return value.encode(
        "utf-8", errors="surrogateescape" if _escaped_only(value) else "surrogatepass"
    )


def _escaped_only(value: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in value)


def addresses(data: bytes) -> None:
    """``\\xff``-separated values: as one list of recipients, and each as an allowlist entry."""
    values = [text(part) for part in data.split(FIELD)]
    contracts.check_recipients(values)
    for value in values:
        contracts.check_rule(value)


def headers(data: bytes) -> None:
    contracts.check_header_value(text(data))


COMMAND_FIELDS = ("subject", "to", "cc", "bcc", "in_reply_to", "text", "html")


def command(data: bytes) -> SendMessage:
    """Fields in COMMAND_FIELDS order, then (file name, content type) pairs of attachments;
    to, cc and bcc are ``\\xfe``-separated lists. An empty in_reply_to or html is none."""
    fields = data.split(FIELD)
    fields += [b""] * (len(COMMAND_FIELDS) - len(fields))
    subject, to, cc, bcc, in_reply_to, body, html = fields[: len(COMMAND_FIELDS)]
    rest = fields[len(COMMAND_FIELDS) :]
    return SendMessage(
        agent_id="agent-1",
        command_id="cmd_fuzz",
        subject=text(subject),
        to=_items(to),
        cc=_items(cc),
        bcc=_items(bcc),
        in_reply_to=text(in_reply_to) or None,
        text=text(body),
        html=text(html) or None,
        attachments=[
            Attachment(filename=text(name), content_type=text(kind), content_base64=_HI)
            for name, kind in zip(rest[::2], rest[1::2], strict=False)
        ],
    )


def encode_command(cmd: SendMessage) -> bytes:
    """The bytes :func:`command` reads as ``cmd`` (its attachments' contents aside)."""
    fields = [
        encode_text(cmd.subject),
        *(ITEM.join(encode_text(v) for v in values) for values in (cmd.to, cmd.cc, cmd.bcc)),
        encode_text(cmd.in_reply_to or ""),
        encode_text(cmd.text or ""),
        encode_text(cmd.html or ""),
    ]
    for attachment in cmd.attachments:
        fields += [encode_text(attachment.filename), encode_text(attachment.content_type)]
    return FIELD.join(fields)


_HI = base64.b64encode(b"hi").decode()


def _items(data: bytes) -> list[str]:
    return [text(item) for item in data.split(ITEM)] if data else []


def mime(data: bytes) -> None:
    contracts.check_build(command(data))


def received(data: bytes) -> None:
    contracts.check_parse(data[:RECEIVED_MAX])
    contracts.check_screened_parse(data[:RECEIVED_MAX])


def screening(data: bytes) -> None:
    """The From's display name, its domain, then Authentication-Results values (top down), all
    ``\\xff``-separated. The From is readable text, as the parser hands it over (an undecodable
    byte is U+FFFD there); the headers are raw, as the message has them."""
    fields = data.split(FIELD)
    display_name, domain = [*fields, b""][:2]
    sender = Sender(_readable(display_name), _readable(domain))
    contracts.check_screening([text(header) for header in fields[2:]], sender)


def _readable(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def autoconfig(data: bytes) -> None:
    """The bytes are the document, as an autoconfig host would answer them."""
    contracts.check_autoconfig(data)


@dataclass(frozen=True)
class Target:
    """A target and the largest input worth giving it (libFuzzer's ``-max_len``)."""

    run: Callable[[bytes], None]
    max_len: int


TARGETS = {
    "addresses": Target(addresses, 4096),
    "headers": Target(headers, 4096),
    "mime": Target(mime, 8192),
    "received": Target(received, RECEIVED_MAX),
    "screening": Target(screening, RECEIVED_MAX),
    "autoconfig": Target(autoconfig, MAX_DOCUMENT),
}
