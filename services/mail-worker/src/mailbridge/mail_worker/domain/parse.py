"""Turning a fetched RFC 5322 message into the ``message.received`` event, with caps.

The HTML body is capped (``html_truncated`` says so), the text body too; attachments are described
(file name, type, size), never carried.
"""

from __future__ import annotations

import email.policy
import email.utils
from datetime import UTC, datetime
from email.message import EmailMessage

from mailbridge.shared.messages import AttachmentInfo, MessageReceived

MAX_TEXT_CHARS = 200_000
MAX_HTML_CHARS = 200_000


def parse(raw: bytes, *, agent_id: str, uid: int, uidvalidity: int) -> MessageReceived:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    html = _body(message, "html")
    return MessageReceived(
        agent_id=agent_id,
        uid=uid,
        uidvalidity=uidvalidity,
        message_id=_header(message, "Message-ID"),
        from_=_header(message, "From"),
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        subject=_header(message, "Subject"),
        date=_date(message),
        in_reply_to=_header(message, "In-Reply-To"),
        references=(_header(message, "References") or "").split(),
        text=(_body(message, "plain") or "")[:MAX_TEXT_CHARS] or None,
        html=html[:MAX_HTML_CHARS] if html else None,
        html_truncated=bool(html and len(html) > MAX_HTML_CHARS),
        attachments=[_attachment(part) for part in message.iter_attachments()],
    )


def _header(message: EmailMessage, name: str) -> str | None:
    value = message.get(name)
    return str(value).strip() if value is not None else None


def _addresses(message: EmailMessage, name: str) -> list[str]:
    return [address for _, address in email.utils.getaddresses(message.get_all(name, []))]


def _date(message: EmailMessage) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(str(message.get("Date", "")))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _body(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None:
        return None
    try:
        return str(part.get_content())
    except (LookupError, UnicodeDecodeError):
        return part.get_payload(decode=True).decode("utf-8", errors="replace")  # type: ignore[union-attr]


def _attachment(part: EmailMessage) -> AttachmentInfo:
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return AttachmentInfo(
        filename=part.get_filename(), content_type=part.get_content_type(), size=size
    )
