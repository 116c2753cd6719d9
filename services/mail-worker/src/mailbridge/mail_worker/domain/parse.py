"""Turning a fetched RFC 5322 message into the ``message.received`` event, with caps.

The HTML body is capped (``html_truncated`` says so), the text body too; attachments are described
(file name, type, size), never carried. ``screening`` comes from the raw Authentication-Results
headers and the From mailboxes (``screening.py``, which parses the former itself).

Whatever the bytes, the answer is an event or :class:`UnparseableMessage`, in time linear in their
size. The standard library's parser is meant to be tolerant, but on this Python its header parser
raises (IndexError, AttributeError, RecursionError…) on some malformed values, is quadratic in the
length of others (a From of 60,000 double quotes takes 40 s), and its MIME parser checks every line
against each open boundary and recurses once per nesting level. So:

- a structured header (addresses, parameters, ids) the library fails on, or longer than
  :data:`MAX_PARSED_HEADER_CHARS`, is read as its raw text, as the library's compat32 policy reads
  every header; each distinct header is parsed once, however often the library asks for it;
- a message of more than :data:`MAX_PARTS` parts, or nested deeper than :data:`MAX_DEPTH`, is
  refused while it is being parsed;
- text JSON cannot carry (a lone surrogate, from bytes no charset decoded) becomes U+FFFD.
"""

from __future__ import annotations

import email.errors
import email.policy
import email.utils
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage, MIMEPart
from email.policy import Policy
from typing import Any, ClassVar, NotRequired, Self, TypedDict, Unpack

from mailbridge.mail_worker.domain.lookalike import Sender
from mailbridge.mail_worker.domain.screening import NOT_SCREENED, ScreeningContext, screen
from mailbridge.shared.messages import AttachmentInfo, MessageReceived

MAX_TEXT_CHARS = 200_000
MAX_HTML_CHARS = 200_000
MAX_PARTS = 300  # a digest of a hundred posts, each with alternatives, is still read
MAX_DEPTH = 20  # forwards of forwards; every level costs each following line a boundary check
MAX_PARSED_HEADER_CHARS = 998  # RFC 5322's line limit: a longer structured value is read raw
MAX_RAW_HEADER_CHARS = 20_000  # the library's own parameter parsing is quadratic in places too
MAX_ADDRESS_HEADERS = 10  # To and Cc appear once; thousands of them would each be parsed

_LIBRARY_FAILURES = (
    IndexError,
    AttributeError,
    TypeError,
    ValueError,
    LookupError,
    RecursionError,
    email.errors.MessageError,
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_LOG = logging.getLogger(__name__)


class UnparseableMessage(ValueError):
    """Bytes mailbridge does not read as a message (beyond its limits); the caller skips them."""


def parse(
    raw: bytes,
    *,
    agent_id: str,
    uid: int,
    uidvalidity: int,
    provider_id: str | None = None,
    screening_context: ScreeningContext = NOT_SCREENED,
) -> MessageReceived:
    """The event of one fetched message, or UnparseableMessage; no other exception."""
    message = _message(raw)
    authentication_results = _raw_fields(message, "Authentication-Results")
    text, html = _body(message, "plain"), _body(message, "html")
    return MessageReceived(
        agent_id=agent_id,
        uid=uid,
        uidvalidity=uidvalidity,
        message_id=_header(message, "Message-ID"),
        from_=_header(message, "From"),
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        reply_to=_addresses(message, "Reply-To"),
        subject=_header(message, "Subject"),
        date=_date(message),
        in_reply_to=_header(message, "In-Reply-To"),
        references=(_header(message, "References") or "").split(),
        text=(text or "")[:MAX_TEXT_CHARS] or None,
        html=html[:MAX_HTML_CHARS] if html else None,
        html_truncated=bool(html and len(html) > MAX_HTML_CHARS),
        attachments=_attachments(message),
        provider_message_id=provider_id,
        screening=screen(authentication_results, _senders(message), screening_context),
    )


class MessageSource(TypedDict):
    """Whose message, where it was read, and what to screen it against: :func:`parse`'s keywords."""

    agent_id: str
    uid: int
    uidvalidity: int
    provider_id: NotRequired[str | None]
    screening_context: NotRequired[ScreeningContext]


def parse_or_none(raw: bytes, **source: Unpack[MessageSource]) -> MessageReceived | None:
    """:func:`parse`, or None (logged) for a message it refuses, so that a poll skips that one
    message rather than failing on it at every poll, the cursor stuck before it."""
    try:
        return parse(raw, **source)
    except UnparseableMessage as refused:
        uid, agent_id = source["uid"], source["agent_id"]
        _LOG.warning("message %s of agent %s not delivered: %s", uid, agent_id, refused)
        return None


def _message(raw: bytes) -> EmailMessage:
    policy = email.policy.default.clone(
        header_factory=_TolerantRegistry(), message_factory=_PartFactory()
    )
    message = email.message_from_bytes(raw, policy=policy)
    assert isinstance(message, EmailMessage)
    return message


class _Part(EmailMessage):
    """A part that knows how deep it sits: the parser attaches each new part to its parent before
    reading it, so a message nested too deeply is refused before the nesting costs anything."""

    depth = 0

    def attach(self, payload: Self) -> None:  # type: ignore[override]  # as typeshed's MIMEPart
        payload.depth = self.depth + 1
        if payload.depth > MAX_DEPTH:
            raise UnparseableMessage(f"MIME parts nested deeper than {MAX_DEPTH} levels")
        super().attach(payload)


@dataclass
class _PartFactory:
    """Makes every part of one message (the policy's ``message_factory``), at most MAX_PARTS."""

    made: int = 0

    def __call__(self, policy: Policy) -> _Part:
        self.made += 1
        if self.made > MAX_PARTS:
            raise UnparseableMessage(f"more than {MAX_PARTS} MIME parts")
        return _Part(policy=policy)


class _RawHeader(BaseHeader):
    """A header as the text it holds (unfolded; bytes no charset decoded become U+FFFD). The
    library reads parameters such as ``boundary`` or ``filename`` from that text itself, and asks a
    Content-Disposition for its ``content_disposition``."""

    max_count: ClassVar[None] = None

    @classmethod
    def parse(cls, value: str, kwds: dict[str, Any]) -> None:
        kwds["parse_tree"] = None  # only used to serialize, and a received message never is
        kwds["decoded"] = value[:MAX_RAW_HEADER_CHARS].strip()

    @property
    def content_disposition(self) -> str | None:
        return self.partition(";")[0].strip().lower() or None


class _TolerantRegistry(HeaderRegistry):
    """The standard header classes, each distinct header parsed once per message, and a structured
    one that is too long or that the library fails on read as a :class:`_RawHeader`."""

    def __init__(self) -> None:
        super().__init__()
        self._parsed: dict[tuple[str, str], BaseHeader] = {}

    def __call__(self, name: str, value: Any) -> BaseHeader:
        if not isinstance(value, str):
            return super().__call__(name, value)
        key = (name, value)
        if key not in self._parsed:
            self._parsed[key] = self._parse(name, value)
        return self._parsed[key]

    def _parse(self, name: str, value: str) -> BaseHeader:
        header_class = self[name]
        structured = not issubclass(header_class, UnstructuredHeader)
        if structured and len(value) > MAX_PARSED_HEADER_CHARS:
            return _RawHeader(name, value)
        try:
            return header_class(name, value)
        except _LIBRARY_FAILURES:
            return _RawHeader(name, value)


def _readable(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _header(message: EmailMessage, name: str) -> str | None:
    value = message.get(name)
    return _readable(str(value).strip()) if value is not None else None


def _raw_fields(message: EmailMessage, name: str) -> list[str]:
    """The text of every ``name`` field, top down, as the message has it (folded, undecoded)."""
    return [value for key, value in message.raw_items() if key.lower() == name.lower()]


def _mailboxes(message: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, address) of the first MAX_ADDRESS_HEADERS ``name`` fields, as the library
    reads them."""
    fields = _raw_fields(message, name)[:MAX_ADDRESS_HEADERS]
    values = [str(message.policy.header_fetch_parse(name, v)) for v in fields]
    try:
        pairs = email.utils.getaddresses(values)
    except RecursionError:  # comments nested hundreds deep
        return []
    return [(_readable(display), _readable(address)) for display, address in pairs]


def _addresses(message: EmailMessage, name: str) -> list[str]:
    return [address for _, address in _mailboxes(message, name) if address]


def _senders(message: EmailMessage) -> list[Sender]:
    mailboxes = _mailboxes(message, "From")
    return [Sender(display, address.rpartition("@")[2] if "@" in address else "")
            for display, address in mailboxes]  # fmt: skip


def _date(message: EmailMessage) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _body(message: EmailMessage, subtype: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(subtype,))
    except _LIBRARY_FAILURES:
        return None
    return _text(part) if part is not None else None


def _text(part: MIMEPart) -> str | None:
    try:
        return _readable(str(part.get_content()))
    except (LookupError, ValueError):  # a charset Python lacks, cannot decode, or cannot name
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else None


def _attachments(message: EmailMessage) -> list[AttachmentInfo]:
    try:
        parts = list(message.iter_attachments())
    except _LIBRARY_FAILURES:  # a multipart whose body is text in a charset no codec names
        return []
    return [_attachment(part) for part in parts]


def _attachment(part: EmailMessage) -> AttachmentInfo:
    payload = part.get_payload(decode=True)
    return AttachmentInfo(
        filename=_filename(part),
        content_type=_readable(part.get_content_type()),
        size=len(payload) if isinstance(payload, bytes) else 0,
    )


def _filename(part: EmailMessage) -> str | None:
    try:
        filename = part.get_filename()
    except _LIBRARY_FAILURES:  # an RFC 2231 charset no codec names ("\x00"): the library
        return None  # catches only LookupError there
    return _readable(filename) if filename is not None else None


def api_uid(provider_id: str) -> int:
    """The ``uid`` of a message read through an API: its Gmail id (hex) as a number, or for any
    other id a stable 63-bit number of it. Unique in practice; ``provider_message_id`` is exact."""
    if re.fullmatch(r"[0-9a-f]{1,16}", provider_id) and int(provider_id, 16) < 2**63:
        return int(provider_id, 16)
    return int.from_bytes(hashlib.sha256(provider_id.encode()).digest()[:8], "big") >> 1
