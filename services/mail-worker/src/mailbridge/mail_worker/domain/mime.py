"""Building the RFC 5322 message of a send command, with the standard library only.

One ``Message-ID`` per ``command_id`` (stable across retries, so a resend is recognisable), a
``Date``, ``From`` from the account; a reply carries ``In-Reply-To``, ``References`` (the thread's
ids, then the original's) and ``Re:``.
Bcc recipients go to the envelope only, never into a header.
"""

from __future__ import annotations

import base64
import email.errors
import email.policy
import email.utils
import functools
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage

from mailbridge.mail_worker.domain import serialized
from mailbridge.shared.addresses import MAX_RECIPIENTS, AddressError, Recipient, parse_recipients
from mailbridge.shared.errors import ErrorCode, PermanentError
from mailbridge.shared.headers import (
    HeaderValueError,
    check_content_type,
    check_header_text,
    check_message_id,
    thread_references,
)
from mailbridge.shared.messages import SendMessage


class _CachedHeaderRegistry(HeaderRegistry):
    """The standard registry makes a new class for every header it parses (``type(...)`` on each
    lookup), a third of the time spent building a message; one class per header name is the same.
    """

    @functools.cache  # noqa: B019 - one registry per process, never collected anyway
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


_POLICY = email.policy.SMTP.clone(max_line_length=998, header_factory=_CachedHeaderRegistry())


@dataclass(frozen=True)
class Outgoing:
    message: EmailMessage
    message_id: str
    envelope_from: str
    recipients: list[str]
    bcc: tuple[str, ...] = ()  # the envelope's recipients no header names
    in_reply_to: str | None = None

    def as_bytes(self) -> bytes:
        """Serialized once: the same bytes go to DATA and to the Sent copy."""
        return self._bytes

    def as_api_bytes(self) -> bytes:
        """For the Gmail API and Graph, which take the recipients from the headers (and drop
        ``Bcc`` before delivery): the message with a ``Bcc`` header when it has Bcc recipients."""
        if not self.bcc:
            return self._bytes
        return b"Bcc: " + ", ".join(self.bcc).encode() + b"\r\n" + self._bytes

    @functools.cached_property
    def _bytes(self) -> bytes:
        return self.message.as_bytes(policy=_POLICY)


def message_id_for(command_id: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "mailbridge.invalid"
    return f"<{command_id}@{domain}>"


def reply_subject(subject: str) -> str:
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def build(command: SendMessage, *, sender: str, now: datetime) -> Outgoing:
    """The message and its envelope, or ``invalid_input`` before anything is sent: every header
    value is checked as the mail library will read it, and the serialized header block is read
    back and must say exactly what was meant (:mod:`.serialized`)."""
    _refuse_unsafe_headers(command, sender)
    to, cc, bcc = _parsed(command.to), _parsed(command.cc), _parsed(command.bcc)
    recipients = _envelope_recipients([*to, *cc, *bcc])
    if not recipients:
        raise PermanentError(ErrorCode.INVALID_INPUT, "A message needs at least one recipient.")
    if len(recipients) > MAX_RECIPIENTS:
        raise PermanentError(ErrorCode.INVALID_INPUT, f"At most {MAX_RECIPIENTS} recipients.")
    message_id = message_id_for(command.command_id, sender)
    try:
        message = _message(command, sender, message_id, now, to, cc)
        shown = {r.key for r in (*to, *cc)}
        hidden = tuple(dict.fromkeys(r.envelope for r in bcc if r.key not in shown))
        outgoing = Outgoing(
            message, message_id, sender, recipients, hidden, command.in_reply_to or None
        )
        raw = outgoing.as_bytes()
    except (ValueError, TypeError, LookupError, email.errors.MessageError) as exc:
        raise PermanentError(
            ErrorCode.INVALID_INPUT, f"The message cannot be built: {exc}"
        ) from exc
    serialized.verify(raw, _intended(command, sender, message_id, to, cc))
    return outgoing


def _intended(
    command: SendMessage,
    sender: str,
    message_id: str,
    to: list[Recipient],
    cc: list[Recipient],
) -> serialized.Intended:
    headers = {"message-id": message_id, "subject": command.subject}
    if references := thread_references(command.references, command.in_reply_to):
        headers["references"] = " ".join(references)
    if command.in_reply_to:
        headers |= {"in-reply-to": command.in_reply_to}
        headers["subject"] = reply_subject(command.subject)
    return serialized.Intended(
        headers=headers,
        sender=[r.key for r in _parsed([sender])],
        to=[r.key for r in to],
        cc=[r.key for r in cc],
        filenames=[shown_filename(a.filename) for a in command.attachments],
    )


def _message(
    command: SendMessage,
    sender: str,
    message_id: str,
    now: datetime,
    to: list[Recipient],
    cc: list[Recipient],
) -> EmailMessage:
    message = EmailMessage(policy=_POLICY)
    message["Message-ID"] = message_id
    message["Date"] = email.utils.format_datetime(now)
    message["From"] = sender
    _address_headers(message, to, cc)
    _thread_headers(message, command)
    _body(message, command)
    return message


def _address_headers(message: EmailMessage, to: list[Recipient], cc: list[Recipient]) -> None:
    """Written from the parsed addresses, so the headers name exactly the envelope's recipients."""
    for header, recipients in (("To", to), ("Cc", cc)):
        if recipients:
            message[header] = ", ".join(r.header_form() for r in recipients)


def _thread_headers(message: EmailMessage, command: SendMessage) -> None:
    if references := thread_references(command.references, command.in_reply_to):
        message["References"] = " ".join(references)
    if command.in_reply_to:
        message["In-Reply-To"] = command.in_reply_to
        message["Subject"] = reply_subject(command.subject)
    else:
        message["Subject"] = command.subject


def _body(message: EmailMessage, command: SendMessage) -> None:
    message.set_content(command.text or "")
    if command.html is not None:
        message.add_alternative(command.html, subtype="html")
    for attachment in command.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            base64.b64decode(attachment.content_base64),
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=shown_filename(attachment.filename),
        )


def shown_filename(filename: str) -> str:
    """A file name as the recipient's mail program shows it: the library drops outer spaces when
    it reads the parameter back, so they are dropped before it is written."""
    return filename.strip()


def _envelope_recipients(parsed: list[Recipient]) -> list[str]:
    """``RCPT TO``: every address of to, cc and bcc, parsed as policy parses them (shared), in
    order and without repeats, as ``parse_recipients`` of all three lists would answer."""
    unique: dict[str, Recipient] = {}
    for recipient in parsed:
        unique.setdefault(recipient.key, recipient)
    return [r.envelope for r in unique.values()]


def _parsed(values: list[str]) -> list[Recipient]:
    try:
        return parse_recipients(values)
    except AddressError as exc:
        raise PermanentError(ErrorCode.INVALID_INPUT, str(exc)) from exc


def _refuse_unsafe_headers(command: SendMessage, sender: str) -> None:
    """Recipients are checked by the shared parser, ``in_reply_to`` by its Message-ID shape."""
    fields = {"sender": [sender], "subject": [command.subject]}
    fields |= {"attachment filename": [a.filename for a in command.attachments]}
    try:
        for field, values in fields.items():
            for value in values:
                check_header_text(value, field)
        for attachment in command.attachments:
            check_content_type(attachment.content_type)
            if not shown_filename(attachment.filename):
                raise HeaderValueError("an attachment needs a file name")
        if command.in_reply_to:
            check_message_id(command.in_reply_to)
        for reference in command.references:
            check_message_id(reference, "references")
    except HeaderValueError as exc:
        raise PermanentError(ErrorCode.INVALID_INPUT, str(exc)) from exc
