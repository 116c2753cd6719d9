"""GraphApi: an agent's mailbox through Microsoft Graph v1.0 (OAUTH-FACTS §2.3, §2.4).

- test: ``/me`` (``mail``, else the UPN) and ``/me/mailFolders/inbox`` (the counts);
- send: ``/me/sendMail`` with the MIME, base64, as ``text/plain``; Exchange files it in Sent Items
  and keeps its ``In-Reply-To``/``References``, so a reply threads;
- receive: the inbox's ``messages/delta``, its delta link the stored position; a 410
  (``SyncStateNotFound``) is a resync from the newest arrival time; each message's MIME from
  ``/messages/{id}/$value``;
- sent mail is found by ``internetMessageId`` in Sent Items.

Graph answers links to follow (next and delta links): they are followed only on the API's own
origin, so a mailbox's answer can never point the worker elsewhere.
"""

from __future__ import annotations

import asyncio
import base64
import urllib.parse
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from mailbridge.mail_worker.adapters.api_calls import MailboxCalls
from mailbridge.mail_worker.adapters.api_http import ApiHttp
from mailbridge.mail_worker.domain.api_errors import classify_graph_error
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
from mailbridge.shared.errors import ErrorCode, RetryableError
from mailbridge.shared.messages import Provider

PAGE_SIZE = 50
MAX_FIRST_SYNC_PAGES = 200  # a first sync reads ids only; a mailbox beyond 10,000 starts later


class GraphUser(BaseModel):
    mail: str | None = None  # None for a mailbox-less user; the UPN is its sign-in name then
    userPrincipalName: str


class GraphFolder(BaseModel):
    totalItemCount: int = 0
    unreadItemCount: int = 0


class GraphItem(BaseModel):
    id: str
    receivedDateTime: datetime | None = None
    removed: dict[str, str] | None = Field(default=None, alias="@removed")


class GraphPage(BaseModel):
    value: list[GraphItem] = Field(default_factory=list)
    next_link: str | None = Field(default=None, alias="@odata.nextLink")
    delta_link: str | None = Field(default=None, alias="@odata.deltaLink")


class GraphApi:
    def __init__(self, http: ApiHttp, tokens: TokenSource, pacing: Pacing, base_url: str) -> None:
        self._http, self._tokens, self._pacing = http, tokens, pacing
        self._base = base_url.rstrip("/")

    def mailbox(self, agent_id: str) -> GraphMailbox:
        calls = MailboxCalls(
            self._http, self._tokens, self._pacing, classify_graph_error,
            agent_id=agent_id, provider=Provider.MICROSOFT,
        )  # fmt: skip
        return GraphMailbox(calls, self._base)


class GraphMailbox:
    def __init__(self, calls: MailboxCalls, base: str) -> None:
        self._calls, self._base, self._me = calls, base, f"{base}/me"

    async def granted_scopes(self) -> list[str]:
        return list((await self._calls.access()).scopes)

    async def probe(self) -> ProbedMailbox:
        user, inbox = await asyncio.gather(
            self._calls.get(f"{self._me}?$select=mail,userPrincipalName", GraphUser),
            self._calls.get(f"{self._me}/mailFolders/inbox", GraphFolder),
        )
        counts = InboxCounts(total=inbox.totalItemCount, unread=inbox.unreadItemCount)
        return ProbedMailbox(email=user.mail or user.userPrincipalName, counts=counts)

    async def send(self, outgoing: Outgoing, sending: DataStarting) -> None:
        body = base64.b64encode(outgoing.as_api_bytes())
        await self._calls.post(f"{self._me}/sendMail", body, "text/plain", sending, ApiCall.SEND)

    async def find_sent(self, message_id: str) -> bool:
        quoted = message_id.replace("'", "''")  # OData string literal
        query = {"$filter": f"internetMessageId eq '{quoted}'", "$select": "id"}
        url = f"{self._me}/mailFolders/sentitems/messages?{urllib.parse.urlencode(query)}"
        return bool((await self._calls.get(url, GraphPage)).value)

    async def first_sync(self, limits: PollLimits) -> SyncedBatch:
        """Every inbox id (a page at a time), keeping the newest ``backlog``; the delta link."""
        link, items = self._delta_url(), list[GraphItem]()
        for _ in range(MAX_FIRST_SYNC_PAGES):
            page = await self._page(link)
            items.extend(i for i in page.value if i.removed is None)
            if page.delta_link is not None or page.next_link is None:
                break
            link = page.next_link
        newest = sorted(items, key=_received)[-limits.backlog :] if limits.backlog else []
        return SyncedBatch(await self._read(newest), page.delta_link or link)

    async def sync(self, position: str, limits: PollLimits) -> SyncedBatch:
        return await self._follow(self._own(position), limits)

    async def resync(self, since: float, limits: PollLimits, known: tuple[str, ...]) -> SyncedBatch:
        at = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return await self._follow(self._delta_url(f"receivedDateTime ge {at}"), limits, known)

    async def _follow(
        self, link: str, limits: PollLimits, known: tuple[str, ...] = ()
    ) -> SyncedBatch:
        """Pages from ``link`` until the delta link, or until a page brings the batch to its
        size: its next link is then where the next poll resumes."""
        items: list[GraphItem] = []
        while True:
            page = await self._page(link)
            items.extend(i for i in page.value if i.removed is None and i.id not in known)
            following = page.delta_link or page.next_link
            if following is None:
                raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "Graph gave no delta link.")
            link = self._own(following)
            if page.delta_link is not None or len(items) >= limits.batch:
                return SyncedBatch(await self._read(sorted(items, key=_received)), link)

    def _delta_url(self, received_filter: str | None = None) -> str:
        query = {"$select": "id,receivedDateTime"}
        if received_filter:
            query["$filter"] = received_filter
        return f"{self._me}/mailFolders/inbox/messages/delta?{urllib.parse.urlencode(query)}"

    async def _page(self, link: str) -> GraphPage:
        prefer = {"Prefer": f"odata.maxpagesize={PAGE_SIZE}"}
        return await self._calls.get(link, GraphPage, headers=prefer, expired=410)

    def _own(self, link: str) -> str:
        """A link Graph answered, if it is on the API's own origin."""
        if _origin(link) != _origin(self._base):
            raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "Graph linked off its own host.")
        return link

    async def _read(self, items: list[GraphItem]) -> list[ApiMessage]:
        return list(await asyncio.gather(*(self._mime(item) for item in items)))

    async def _mime(self, item: GraphItem) -> ApiMessage:
        url = f"{self._me}/messages/{urllib.parse.quote(item.id, safe='')}/$value"
        return ApiMessage(item.id, await self._calls.get_bytes(url), _received(item))


def _received(item: GraphItem) -> float:
    return item.receivedDateTime.timestamp() if item.receivedDateTime else 0.0


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port
