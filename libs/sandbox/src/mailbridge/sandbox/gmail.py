"""The Gmail API v1 a mail-worker reads through: profile, labels, messages.list/get, history.

Wire shapes from OAUTH-FACTS §2.1/2.2: ids and history ids are strings, empty lists are left
out (``{"resultSizeEstimate": 0}``), a history id below what is kept is a 404.
"""

from __future__ import annotations

import base64
import re
from email.parser import BytesHeaderParser
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbridge.sandbox.apis import (
    gmail_bad_request,
    gmail_insufficient_scope,
    gmail_not_found,
    gmail_unauthenticated,
    gmail_unavailable,
)
from mailbridge.sandbox.delivery import PostOffice
from mailbridge.sandbox.gmail_query import compile_query
from mailbridge.sandbox.gmail_send import GMAIL_SEND_SCOPES, GmailSend
from mailbridge.sandbox.guard import Dialect, Guard, Refused
from mailbridge.sandbox.mailstore import Mailbox, StoredMessage
from mailbridge.sandbox.state import AccessToken, ProviderState, User

GMAIL_READ_SCOPES = {
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
}
ME = "/gmail/gmail/v1/users/me"
UPLOAD = "/gmail/upload/gmail/v1/users/me"
FORMATS = ("minimal", "full", "raw", "metadata")
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
_HEX_ID = re.compile(r"[0-9a-f]{16}")


class GmailApi:
    def __init__(self, state: ProviderState, post: PostOffice) -> None:
        self.state = state
        self.guard = Guard(state, Dialect(gmail_unavailable, gmail_unauthenticated))
        self.send = GmailSend(state, post)

    def routes(self) -> list[Route]:
        read = partial(self.guard.route, needs=GMAIL_READ_SCOPES, denied=gmail_insufficient_scope)
        send = partial(self.guard.route, needs=GMAIL_SEND_SCOPES, denied=gmail_insufficient_scope)
        post = ("POST",)
        return [
            send(f"{ME}/messages/send", "send", answer=self.send.json, methods=post),
            send(f"{UPLOAD}/messages/send", "send", answer=self.send.upload, methods=post),
            read(f"{ME}/profile", "api", answer=self.profile),
            read(f"{ME}/labels/{{label}}", "api", answer=self.label),
            read(f"{ME}/messages", "sync", answer=self.list_messages),
            read(f"{ME}/messages/{{id}}", "sync", answer=self.get_message),
            read(f"{ME}/history", "sync", answer=self.history),
        ]

    def _mailbox(self, user: User) -> Mailbox:
        return self.state.mailbox(user)

    async def profile(self, request: Request, user: User, token: AccessToken) -> Response:
        mailbox = self._mailbox(user)
        threads = {m.thread_id for m in mailbox.messages.values()}
        body = {"emailAddress": user.email, "messagesTotal": len(mailbox.messages)}
        body |= {"threadsTotal": len(threads), "historyId": str(mailbox.history_id)}
        return JSONResponse(body)

    async def label(self, request: Request, user: User, token: AccessToken) -> Response:
        """A system label's counts (INBOX, SENT, UNREAD), straight from the store."""
        label = request.path_params["label"]
        if label not in ("INBOX", "SENT", "UNREAD"):
            return gmail_not_found()
        found = [m for m in self._mailbox(user).messages.values() if label in m.labels]
        unread = [m for m in found if m.unread]
        return JSONResponse(
            {
                "id": label,
                "name": label,
                "messageListVisibility": "hide",
                "labelListVisibility": "labelShow",
                "type": "system",
                "messagesTotal": len(found),
                "messagesUnread": len(unread),
                "threadsTotal": len({m.thread_id for m in found}),
                "threadsUnread": len({m.thread_id for m in unread}),
            }
        )

    async def list_messages(self, request: Request, user: User, token: AccessToken) -> Response:
        """Newest first; every ``labelIds`` must match, and every term of ``q``."""
        params = request.query_params
        try:
            matches = compile_query(params.get("q", ""))
        except ValueError as exc:
            return gmail_bad_request(str(exc))
        wanted = set(params.getlist("labelIds"))
        found = [
            m
            for m in self._mailbox(user).messages.values()
            if wanted <= set(m.labels) and matches(m)
        ]
        found.sort(key=lambda m: int(m.id, 16), reverse=True)
        page, next_token = _message_page(found, params.get("pageToken"), _size(params, 100))
        body: dict[str, Any] = {"resultSizeEstimate": len(found)}
        if page:
            body["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if next_token:
            body["nextPageToken"] = next_token
        return JSONResponse(body)

    async def get_message(self, request: Request, user: User, token: AccessToken) -> Response:
        shape = request.query_params.get("format", "full")
        if shape not in FORMATS:
            return gmail_bad_request(f"Invalid value at 'format', \"{shape}\"")
        found = self._mailbox(user).messages.get(request.path_params["id"])
        if found is None:
            return gmail_not_found()
        return JSONResponse(_message(found, shape))

    async def history(self, request: Request, user: User, token: AccessToken) -> Response:
        """``messageAdded`` records after ``startHistoryId``; below the kept floor, a 404."""
        params = request.query_params
        mailbox = self._mailbox(user)
        start = _history_number(params.get("startHistoryId"), "startHistoryId")
        if start < mailbox.history_floor:
            return gmail_not_found()
        after = max(start, _history_number(params.get("pageToken") or "0", "pageToken"))
        records = [r for r in mailbox.history if r.id > after and _kept(r.labels, params)]
        page = records[: _size(params, 100)]
        body: dict[str, Any] = {"historyId": str(mailbox.history_id)}
        if page and _adds_wanted(params.getlist("historyTypes")):
            body["history"] = [_history_record(r.id, r.message, r.labels) for r in page]
        if len(records) > len(page):
            body["nextPageToken"] = str(page[-1].id)
        return JSONResponse(body)


def _size(params: Any, default: int) -> int:
    """``maxResults``: Gmail caps it at 500 and refuses what is not a number."""
    value = params.get("maxResults")
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()):
        raise Refused(
            gmail_bad_request(f"Invalid value at 'max_results' (TYPE_UINT32), \"{value}\"")
        )
    return max(1, min(int(value), 500)) if len(value) < 6 else 500


def _message_page(
    found: list[StoredMessage], token: str | None, size: int
) -> tuple[list[StoredMessage], str | None]:
    """A page starting at the message the token names (ids only decrease down the list)."""
    if token:
        if _HEX_ID.fullmatch(token) is None:
            raise Refused(gmail_bad_request("Invalid pageToken"))
        found = [m for m in found if int(m.id, 16) <= int(token, 16)]
    page = found[:size]
    return page, found[size].id if len(found) > size else None


def _history_number(value: str | None, name: str) -> int:
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 20:
        raise Refused(gmail_bad_request(f"Invalid value for {name}: {value!r}"))
    return int(value)


def _kept(labels: tuple[str, ...], params: Any) -> bool:
    label = params.get("labelId")
    return label is None or label in labels


def _adds_wanted(types: list[str]) -> bool:
    for kind in types:
        if kind not in HISTORY_TYPES:
            raise Refused(gmail_bad_request(f"Invalid value at 'history_types', \"{kind}\""))
    return not types or "messageAdded" in types


def _history_record(number: int, message: StoredMessage, labels: tuple[str, ...]) -> dict[str, Any]:
    brief = {"id": message.id, "threadId": message.thread_id}
    added = {"message": brief | {"labelIds": list(labels)}}
    return {"id": str(number), "messages": [brief], "messagesAdded": [added]}


def _message(message: StoredMessage, shape: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message.id,
        "threadId": message.thread_id,
        "labelIds": message.labels,
        "snippet": message.envelope.snippet[:100],
        "historyId": str(message.history_id),
        "internalDate": str(int(message.received_at * 1000)),
        "sizeEstimate": len(message.raw),
    }
    if shape == "raw":
        body["raw"] = base64.urlsafe_b64encode(message.raw).decode()
    elif shape in ("full", "metadata"):
        body["payload"] = _payload(message.raw)
    return body


def _payload(raw: bytes) -> dict[str, Any]:
    """The top part's type and headers; parts and bodies are beyond this sandbox."""
    parsed = BytesHeaderParser().parsebytes(raw)
    headers = [{"name": name, "value": str(value)} for name, value in parsed.items()]
    return {"mimeType": parsed.get_content_type(), "headers": headers}
