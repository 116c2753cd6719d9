"""GmailApi: an agent's mailbox through the Gmail API v1 (OAUTH-FACTS §2.1, §2.2).

- test: ``users/me/profile`` (the address) and ``labels/INBOX`` (the counts);
- send: ``messages/send`` with the MIME as base64url ``raw``, and the thread of the message it
  answers (found by its Message-ID) so the reply joins it; past ``upload_threshold`` bytes the
  upload endpoint with the MIME as it is;
- receive: ``history`` from the stored history id (``messageAdded`` to INBOX), each new message
  read ``format=raw``; a 404 for an expired history id is a resync from the newest arrival time;
- sent mail is found with ``q=rfc822msgid:``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import urllib.parse
import uuid

from pydantic import BaseModel, Field, field_validator

from mailbridge.mail_worker.adapters.api_calls import MailboxCalls
from mailbridge.mail_worker.adapters.api_http import ApiHttp
from mailbridge.mail_worker.domain.api_errors import classify_gmail_error
from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.mail_worker.ports import (
    ApiCall,
    ApiMessage,
    DataStarting,
    InboxCounts,
    Pacing,
    PollLimits,
    ProbedMailbox,
    SyncedBatch,
    TokenSource,
)
from mailbridge.shared.messages import Provider

UPLOAD_THRESHOLD_BYTES = 3_500_000
"""A ``raw`` this large, base64url in JSON, nears the JSON endpoint's limit: upload instead."""


class GmailProfile(BaseModel):
    emailAddress: str
    historyId: str = ""


class GmailLabel(BaseModel):
    messagesTotal: int = 0
    messagesUnread: int = 0


class GmailRef(BaseModel):
    id: str
    threadId: str = ""
    labelIds: list[str] = Field(default_factory=list)


class GmailList(BaseModel):
    messages: list[GmailRef] = Field(default_factory=list)
    nextPageToken: str | None = None


class GmailRaw(BaseModel):
    id: str
    raw: bytes  # base64url in the answer, padded or not; the MIME once read
    internalDate: int = 0  # epoch milliseconds, a string in the answer

    @field_validator("raw", mode="before")
    @classmethod
    def _decoded(cls, value: object) -> bytes:
        if not isinstance(value, str):
            raise ValueError("raw is not a string")
        try:
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except binascii.Error as exc:
            raise ValueError("raw is not base64url") from exc


class GmailAdded(BaseModel):
    message: GmailRef


class GmailHistoryRecord(BaseModel):
    id: str
    messagesAdded: list[GmailAdded] = Field(default_factory=list)


class GmailHistory(BaseModel):
    history: list[GmailHistoryRecord] = Field(default_factory=list)
    nextPageToken: str | None = None
    historyId: str


class GmailApi:
    def __init__(
        self,
        http: ApiHttp,
        tokens: TokenSource,
        pacing: Pacing,
        base_url: str,
        upload_threshold: int = UPLOAD_THRESHOLD_BYTES,
    ) -> None:
        self._http, self._tokens, self._pacing = http, tokens, pacing
        self._base, self._upload_threshold = base_url.rstrip("/"), upload_threshold

    def mailbox(self, agent_id: str) -> GmailMailbox:
        calls = MailboxCalls(
            self._http, self._tokens, self._pacing, classify_gmail_error,
            agent_id=agent_id, provider=Provider.GOOGLE,
        )  # fmt: skip
        return GmailMailbox(calls, self._base, self._upload_threshold)


class GmailMailbox:
    def __init__(self, calls: MailboxCalls, base: str, upload_threshold: int) -> None:
        self._calls, self._base, self._upload_threshold = calls, base, upload_threshold
        self._me = f"{base}/gmail/v1/users/me"

    async def granted_scopes(self) -> list[str]:
        return list((await self._calls.access()).scopes)

    async def probe(self) -> ProbedMailbox:
        profile, inbox = await asyncio.gather(
            self._calls.get(f"{self._me}/profile", GmailProfile),
            self._calls.get(f"{self._me}/labels/INBOX", GmailLabel),
        )
        counts = InboxCounts(total=inbox.messagesTotal, unread=inbox.messagesUnread)
        return ProbedMailbox(email=profile.emailAddress, counts=counts)

    async def send(self, outgoing: Outgoing, sending: DataStarting) -> None:
        raw = outgoing.as_api_bytes()
        thread = await self._thread_of(outgoing.in_reply_to)
        if len(raw) > self._upload_threshold:
            body, content_type = _multipart(raw, thread)
            url = f"{self._base}/upload/gmail/v1/users/me/messages/send?uploadType=multipart"
        else:
            document = {"raw": base64.urlsafe_b64encode(raw).decode()}
            body = json.dumps(document | ({"threadId": thread} if thread else {})).encode()
            url, content_type = f"{self._me}/messages/send", "application/json"
        await self._calls.post(url, body, content_type, sending, ApiCall.SEND)

    async def _thread_of(self, message_id: str | None) -> str | None:
        """The thread of the message answered, when it is in this mailbox."""
        if not message_id:
            return None
        found = await self._search(f"rfc822msgid:{message_id.strip('<>')}", None, limit=1)
        return found[0].threadId if found else None

    async def find_sent(self, message_id: str) -> bool:
        query = f"rfc822msgid:{message_id.strip('<>')}"
        return bool(await self._search(query, "SENT", limit=1))

    async def first_sync(self, limits: PollLimits) -> SyncedBatch:
        profile = await self._calls.get(f"{self._me}/profile", GmailProfile)
        refs = await self._search("", "INBOX", limits.backlog) if limits.backlog else []
        return SyncedBatch(await self._read(refs[::-1], limits), profile.historyId)

    async def sync(self, position: str, limits: PollLimits) -> SyncedBatch:
        added, position = await self._history(position, limits.batch)
        return SyncedBatch(await self._read(added, limits), position)

    async def resync(self, since: float, limits: PollLimits, known: tuple[str, ...]) -> SyncedBatch:
        """``after:`` counts whole seconds: the messages of the newest second seen come again."""
        profile = await self._calls.get(f"{self._me}/profile", GmailProfile)  # before the list
        listed = await self._search(f"after:{int(since) - 1}", "INBOX", limits.batch + len(known))
        fresh = [ref for ref in listed if ref.id not in known][: limits.batch]
        return SyncedBatch(await self._read(fresh[::-1], limits), profile.historyId)

    async def _history(self, start: str, limit: int) -> tuple[list[GmailRef], str]:
        """Messages added to INBOX since ``start``, at most about ``limit``, and where to resume:
        the last record taken whole, or the mailbox's history id once every page was read."""
        added: list[GmailRef] = []
        page: str | None = None
        while True:
            history = await self._history_page(start, page)
            for record in history.history:
                added.extend(
                    a.message for a in record.messagesAdded if "INBOX" in a.message.labelIds
                )
                if len(added) >= limit:
                    return added, record.id
            if history.nextPageToken is None:
                return added, history.historyId
            page = history.nextPageToken

    async def _history_page(self, start: str, page: str | None) -> GmailHistory:
        query = {"startHistoryId": start, "historyTypes": "messageAdded", "labelId": "INBOX"}
        url = f"{self._me}/history?{urllib.parse.urlencode(query | _page(page))}"
        return await self._calls.get(url, GmailHistory, expired=404)

    async def _search(self, query: str, label: str | None, limit: int) -> list[GmailRef]:
        """Messages matching ``query`` (Gmail's search syntax) in ``label``: newest first, at
        most ``limit``."""
        found: list[GmailRef] = []
        page: str | None = None
        while len(found) < limit:
            params = {"maxResults": str(min(500, limit - len(found)))} | _page(page)
            params |= ({"q": query} if query else {}) | ({"labelIds": label} if label else {})
            url = f"{self._me}/messages?{urllib.parse.urlencode(params)}"
            listed = await self._calls.get(url, GmailList)
            found.extend(listed.messages)
            if listed.nextPageToken is None:
                break
            page = listed.nextPageToken
        return found[:limit]

    async def _read(self, refs: list[GmailRef], limits: PollLimits) -> list[ApiMessage]:
        unique = list(dict.fromkeys(ref.id for ref in refs))[: limits.batch]
        return list(await asyncio.gather(*(self._raw(pid) for pid in unique)))

    async def _raw(self, provider_id: str) -> ApiMessage:
        message = await self._calls.get(f"{self._me}/messages/{provider_id}?format=raw", GmailRaw)
        return ApiMessage(message.id, message.raw, message.internalDate / 1000)


def _page(token: str | None) -> dict[str, str]:
    return {"pageToken": token} if token else {}


def _multipart(raw: bytes, thread: str | None) -> tuple[bytes, str]:
    """``uploadType=multipart``: the metadata (the thread) as JSON, then the message itself."""
    boundary = f"mailbridge-{uuid.uuid4().hex}"
    metadata = json.dumps({"threadId": thread} if thread else {}).encode()
    parts = [
        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
        metadata,
        f"\r\n--{boundary}\r\nContent-Type: message/rfc822\r\n\r\n".encode(),
        raw,
        f"\r\n--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/related; boundary={boundary}"
