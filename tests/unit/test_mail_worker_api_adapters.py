"""The Gmail and Graph mailboxes on httpx's MockTransport: what a send, a sync and a search ask
for, one fresh token after a 401, a Retry-After kept and shared, a lost answer told apart from a
request that never left, and links followed only on the API's own host."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr

from mailbridge.mail_worker.adapters.api_http import ApiHttp
from mailbridge.mail_worker.adapters.gmail import GmailApi, GmailMailbox
from mailbridge.mail_worker.adapters.graph import GraphApi, GraphMailbox
from mailbridge.mail_worker.domain import mime
from mailbridge.mail_worker.ports import (
    ApiCall,
    CursorExpiredError,
    OutcomeUnknownError,
    PollLimits,
    TokenGrant,
)
from mailbridge.sandbox import apis as wire
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import Provider, SendMessage
from tests.fakes.clock import FixedClock
from tests.fakes.mail_worker import FakeTokens

GMAIL = "https://gmail.test"
GRAPH = "https://graph.test/v1.0"
LIMITS = PollLimits(backlog=10, batch=50, max_message_bytes=1_000_000)
Answer = Callable[[httpx.Request], httpx.Response]


class RecordingPacing:
    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.held: list[float] = []

    @asynccontextmanager
    async def call(self, agent_id: str, provider: Provider, kind: ApiCall) -> AsyncIterator[None]:
        self.calls.append(kind)
        yield

    async def hold_off(self, agent_id: str, seconds: float) -> None:
        self.held.append(seconds)


class World:
    def __init__(self, answer: Answer) -> None:
        self.requests: list[httpx.Request] = []

        def recorded(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return answer(request)

        self.http = ApiHttp(ca_file=None, timeout=5, transport=httpx.MockTransport(recorded))
        self.tokens, self.pacing = FakeTokens("token-1"), RecordingPacing()

    def gmail(self) -> GmailMailbox:
        return GmailApi(self.http, self.tokens, self.pacing, GMAIL, upload_threshold=2000).mailbox(
            "a1"
        )

    def graph(self) -> GraphMailbox:
        return GraphApi(self.http, self.tokens, self.pacing, GRAPH).mailbox("a1")


@pytest.fixture
async def world() -> AsyncIterator[Callable[[Answer], World]]:
    made: list[World] = []

    def make(answer: Answer) -> World:
        made.append(World(answer))
        return made[-1]

    yield make
    for each in made:
        await each.http.close()


def outgoing(**fields: object) -> mime.Outgoing:
    given = {"to": ["ada@example.com"], "subject": "Hi", "text": "x"} | fields
    command = SendMessage(agent_id="a1", command_id="cmd_1", **given)  # type: ignore[arg-type]
    return mime.build(command, sender="agent@example.com", now=FixedClock().now())


async def nothing() -> None:
    return None


def json_answer(body: object, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


async def test_a_gmail_send_posts_the_mime_as_base64url_raw_with_bcc_for_the_api(
    world: Callable[[Answer], World],
) -> None:
    w = world(lambda r: json_answer({"id": "m1", "threadId": "t1", "labelIds": ["SENT"]}))
    await w.gmail().send(outgoing(bcc=["hidden@example.com"]), nothing)
    [request] = w.requests
    assert request.url.path == "/gmail/v1/users/me/messages/send"
    raw = base64.urlsafe_b64decode(json.loads(request.content)["raw"])
    assert raw.startswith(b"Bcc: hidden@example.com\r\n") and b"Subject: Hi" in raw
    assert w.pacing.calls == [ApiCall.SEND]


async def test_a_gmail_reply_joins_the_thread_of_the_message_it_answers(
    world: Callable[[Answer], World],
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/messages"):
            assert request.url.params["q"] == "rfc822msgid:orig@x.example"
            return json_answer({"messages": [{"id": "m0", "threadId": "t9"}]})
        return json_answer({"id": "m1", "threadId": "t9"})

    w = world(answer)
    await w.gmail().send(outgoing(in_reply_to="<orig@x.example>"), nothing)
    assert json.loads(w.requests[-1].content)["threadId"] == "t9"


async def test_a_large_gmail_send_goes_to_the_upload_endpoint_as_multipart(
    world: Callable[[Answer], World],
) -> None:
    w = world(lambda r: json_answer({"id": "m1", "threadId": "t1"}))
    big = outgoing(text="y" * 5000)
    await w.gmail().send(big, nothing)
    [request] = w.requests
    assert request.url.path == "/upload/gmail/v1/users/me/messages/send"
    assert request.url.params["uploadType"] == "multipart"
    assert request.headers["content-type"].startswith("multipart/related; boundary=")
    assert big.as_api_bytes() in request.content


async def test_a_graph_send_posts_the_mime_base64_as_text_plain(
    world: Callable[[Answer], World],
) -> None:
    w = world(lambda r: httpx.Response(202))
    sent = outgoing(in_reply_to="<orig@x.example>")
    await w.graph().send(sent, nothing)
    [request] = w.requests
    assert (request.url.path, request.headers["content-type"]) == (
        "/v1.0/me/sendMail",
        "text/plain",
    )
    mime_bytes = base64.b64decode(request.content)
    assert mime_bytes == sent.as_api_bytes() and b"In-Reply-To: <orig@x.example>" in mime_bytes


async def test_a_401_gets_one_fresh_token_naming_the_refused_one_then_succeeds(
    world: Callable[[Answer], World],
) -> None:
    answers = iter([wire.graph_unauthenticated(), None])

    def answer(request: httpx.Request) -> httpx.Response:
        refused = next(answers)
        if refused is not None:
            return httpx.Response(401, content=bytes(refused.body), headers=dict(refused.headers))
        return httpx.Response(202)

    w = world(answer)
    started: list[int] = []

    async def sending() -> None:
        started.append(1)

    await w.graph().send(outgoing(), sending)
    assert w.tokens.refused == ["token-1"] and len(w.requests) == 2
    assert started == [1]  # the claim is made once, however often the request goes


async def test_a_second_401_is_the_grant_revoked(world: Callable[[Answer], World]) -> None:
    refused = wire.gmail_unauthenticated()
    w = world(lambda r: httpx.Response(401, content=bytes(refused.body)))
    with pytest.raises(PermanentError) as raised:
        await w.gmail().probe()
    assert raised.value.code is ErrorCode.OAUTH_TOKEN_REVOKED
    assert len(w.tokens.refused) == 1


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"code": 429}}),
        httpx.Response(
            429,
            json={
                "error": {
                    "code": 429,
                    "message": "User-rate limit exceeded.  Retry after 2099-01-01T00:00:07.000Z",
                }
            },
        ),
    ],
)
async def test_a_throttled_answer_keeps_its_wait_and_holds_off_every_replica(
    world: Callable[[Answer], World], answer: httpx.Response
) -> None:
    w = world(lambda r: answer)
    with pytest.raises(RetryableError) as raised:
        await w.gmail().send(outgoing(), nothing)
    assert raised.value.code is ErrorCode.PROVIDER_THROTTLED
    wait = raised.value.retry_after_seconds
    assert wait is not None and wait >= 7 and w.pacing.held == [wait]


async def test_a_send_whose_answer_is_lost_is_unknown_and_one_never_sent_is_not(
    world: Callable[[Answer], World],
) -> None:
    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed", request=request)

    with pytest.raises(OutcomeUnknownError):
        await world(dropped).graph().send(outgoing(), nothing)

    started: list[int] = []

    async def sending() -> None:
        started.append(1)

    closed = ApiHttp(ca_file=None, timeout=2)  # nothing listens on port 1: the request never left
    try:
        graph = GraphApi(closed, FakeTokens(), RecordingPacing(), "http://127.0.0.1:1/v1.0")
        with pytest.raises(RetryableError) as raised:
            await graph.mailbox("a1").send(outgoing(), sending)
    finally:
        await closed.close()
    assert raised.value.code is ErrorCode.CONNECTION_REFUSED
    assert started == []


async def test_gmail_sync_reads_inbox_additions_from_history_and_each_raw_message(
    world: Callable[[Answer], World],
) -> None:
    raw = base64.urlsafe_b64encode(b"Subject: hello\r\n\r\nbody").decode().rstrip("=")

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/history"):
            assert request.url.params["startHistoryId"] == "100"
            added = [
                {"message": {"id": "m1", "labelIds": ["INBOX", "UNREAD"]}},
                {"message": {"id": "m2", "labelIds": ["SENT"]}},
            ]
            return json_answer(
                {"history": [{"id": "101", "messagesAdded": added}], "historyId": "105"}
            )
        return json_answer({"id": "m1", "raw": raw, "internalDate": "1700000000000"})

    w = world(answer)
    batch = await w.gmail().sync("100", LIMITS)
    assert batch.position == "105"
    assert [(m.provider_id, m.raw, m.received_at) for m in batch.messages] == [
        ("m1", b"Subject: hello\r\n\r\nbody", 1_700_000_000.0)
    ]


async def test_an_expired_position_is_cursor_expired_for_both(
    world: Callable[[Answer], World],
) -> None:
    w = world(lambda r: json_answer({"error": {"code": 404}}, 404))
    with pytest.raises(CursorExpiredError):
        await w.gmail().sync("1", LIMITS)
    gone = world(lambda r: json_answer({"error": {"code": "SyncStateNotFound"}}, 410))
    with pytest.raises(CursorExpiredError):
        await gone.graph().sync(
            f"{GRAPH}/me/mailFolders/inbox/messages/delta?$deltatoken=x", LIMITS
        )


async def test_graph_follows_pages_to_the_delta_link_and_reads_each_mime(
    world: Callable[[Answer], World],
) -> None:
    delta = f"{GRAPH}/me/mailFolders/inbox/messages/delta"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/$value"):
            return httpx.Response(200, content=b"Subject: s\r\n\r\nb")
        if "skiptoken" in str(request.url):
            return json_answer(
                {
                    "value": [{"id": "B", "receivedDateTime": "2026-12-03T10:00:01Z"}],
                    "@odata.deltaLink": f"{delta}?$deltatoken=d2",
                }
            )
        return json_answer(
            {
                "value": [
                    {"id": "A", "receivedDateTime": "2026-12-03T10:00:00Z"},
                    {"id": "gone", "@removed": {"reason": "deleted"}},
                ],
                "@odata.nextLink": f"{delta}?$skiptoken=s1",
            }
        )

    w = world(answer)
    batch = await w.graph().sync(f"{delta}?$deltatoken=d1", LIMITS)
    assert [m.provider_id for m in batch.messages] == ["A", "B"]
    assert batch.position == f"{delta}?$deltatoken=d2"
    assert all(r.headers.get("prefer") == "odata.maxpagesize=50" for r in w.requests[:2])


async def test_a_graph_link_off_its_own_host_is_never_followed(
    world: Callable[[Answer], World],
) -> None:
    w = world(lambda r: json_answer({"value": [], "@odata.deltaLink": "https://evil.test/x"}))
    with pytest.raises(RetryableError):
        await w.graph().sync(f"{GRAPH}/me/mailFolders/inbox/messages/delta?$deltatoken=a", LIMITS)
    with pytest.raises(RetryableError):
        await w.graph().sync("https://evil.test/steal", LIMITS)
    assert all(r.url.host == "graph.test" for r in w.requests)


async def test_sent_mail_is_searched_by_message_id(world: Callable[[Answer], World]) -> None:
    w = world(
        lambda r: json_answer(
            {"messages": [{"id": "m1"}]} if "gmail" in r.url.host else {"value": []}
        )
    )
    assert await w.gmail().find_sent("<cmd_1@example.com>") is True
    assert await w.graph().find_sent("<it's@example.com>") is False
    gmail_q, graph_q = w.requests[0].url.params, w.requests[1].url.params
    assert (gmail_q["q"], gmail_q["labelIds"]) == ("rfc822msgid:cmd_1@example.com", "SENT")
    assert graph_q["$filter"] == "internetMessageId eq '<it''s@example.com>'"


async def test_a_probe_asks_the_broker_for_one_token_for_its_concurrent_calls(
    world: Callable[[Answer], World],
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/profile"):
            return json_answer({"emailAddress": "agent@example.com", "messagesTotal": 1})
        return json_answer({"messagesTotal": 1, "messagesUnread": 0})

    w = world(answer)
    w.tokens = SlowTokens()
    await w.gmail().probe()
    assert len(w.requests) == 2 and w.tokens.asked == ["a1"]


class SlowTokens(FakeTokens):
    """A broker rpc takes a moment: concurrent callers would each ask if nothing joined them."""

    async def grant(self, agent_id: str, *, refused: SecretStr | None = None) -> TokenGrant:
        await asyncio.sleep(0.01)
        return await super().grant(agent_id, refused=refused)
