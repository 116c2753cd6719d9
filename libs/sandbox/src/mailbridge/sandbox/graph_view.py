"""A stored message as a Graph ``message`` resource, and the ``$select`` / ``$filter`` it takes.

Only the filters a mail-worker sends are understood: ``receivedDateTime ge|gt <ISO>`` on delta
and ``internetMessageId eq '<id>'`` on a folder's messages; anything else is Graph's 400.
"""

from __future__ import annotations

import datetime
import email.utils
import re
from typing import Any

from starlette.responses import Response

from mailbridge.sandbox.apis import graph_error
from mailbridge.sandbox.guard import Refused
from mailbridge.sandbox.mailstore import Folder, StoredMessage
from mailbridge.sandbox.state import User
from mailbridge.sandbox.web import stable_number

FOLDERS: dict[str, Folder] = {"inbox": "inbox", "sentitems": "sent"}
PROPERTIES = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "isRead",
    "isDraft",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
)
_RECEIVED = re.compile(r"\s*receivedDateTime\s+(ge|gt)\s+(\S+)\s*", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*", re.IGNORECASE)


def folder_of(name: str) -> Folder:
    """A well-known folder name, in any case (Inbox, SentItems…)."""
    folder = FOLDERS.get(name.lower())
    if folder is None:
        raise Refused(not_found())
    return folder


def folder_id(user: User, folder: str) -> str:
    return "AAMk" + stable_number(f"{folder}:{user.upn}", 16)


def not_found() -> Response:
    return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def bad_filter() -> Response:
    message = "The query filter contains one or more invalid nodes."
    return graph_error(400, "ErrorInvalidUrlQueryFilter", message)


def selected(value: str | None) -> list[str] | None:
    """The ``$select`` names (None: every property); an unknown name is Graph's 400."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    for name in names:
        if name not in PROPERTIES:
            message = f"Could not find a property named '{name}' on type 'microsoft.graph.message'."
            raise Refused(graph_error(400, "RequestBroker--ParseUri", message))
    return names


def received_bound(value: str | None) -> tuple[float | None, bool]:
    """``receivedDateTime ge|gt <ISO 8601>``, the one filter delta takes: the instant (None
    without a filter) and whether it is ``gt``."""
    if value is None:
        return None, False
    match = _RECEIVED.fullmatch(value)
    if match is None:
        raise Refused(bad_filter())
    return _instant(match.group(2)), match.group(1).lower() == "gt"


def message_id_filter(value: str | None) -> str | None:
    """The id of ``internetMessageId eq '<id>'`` (quotes doubled inside, as OData escapes)."""
    if value is None:
        return None
    match = _MESSAGE_ID.fullmatch(value)
    if match is None:
        raise Refused(bad_filter())
    return match.group(1).replace("''", "'")


def resource(user: User, message: StoredMessage, names: list[str] | None) -> dict[str, Any]:
    """The message as Graph shows it, cut to ``names`` (``id`` always stays)."""
    full = _full(user, message)
    keep = PROPERTIES if names is None else ("id", *names)
    etag = {"@odata.etag": full["@odata.etag"]}
    return etag | {name: full[name] for name in PROPERTIES if name in keep}


def timestamp(moment: float) -> str:
    return datetime.datetime.fromtimestamp(int(moment), datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(text: str) -> float:
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(bad_filter()) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()


def _full(user: User, message: StoredMessage) -> dict[str, Any]:
    envelope = message.envelope
    change_key = "CQAAABYAAA" + stable_number(message.id, 12)
    sender = _recipient(envelope.sender)
    return {
        "@odata.etag": f'W/"{change_key}"',
        "id": message.id,
        "createdDateTime": timestamp(message.received_at),
        "lastModifiedDateTime": timestamp(message.received_at),
        "changeKey": change_key,
        "receivedDateTime": timestamp(message.received_at),
        "sentDateTime": timestamp(message.received_at),
        "hasAttachments": False,
        "internetMessageId": envelope.message_id,
        "subject": envelope.subject,
        "bodyPreview": envelope.snippet[:255],
        "importance": "normal",
        "parentFolderId": folder_id(user, "sentitems" if message.folder == "sent" else "inbox"),
        "conversationId": message.thread_id,
        "isRead": not message.unread,
        "isDraft": False,
        "from": sender,
        "sender": sender,
        "toRecipients": [_recipient(a) for a in envelope.to],
        "ccRecipients": [_recipient(a) for a in envelope.cc],
        "bccRecipients": [_recipient(a) for a in envelope.bcc],
    }


def _recipient(text: str) -> dict[str, Any]:
    name, address = email.utils.parseaddr(text)
    return {"emailAddress": {"name": name or address, "address": address}}
