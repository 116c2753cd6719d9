"""Whatever the Gmail API or Graph answers (any status, any JSON or bytes, any Retry-After), the
worker's mailbox calls end in their result or in the taxonomy's error (or CursorExpiredError,
the resync signal), never in another exception that would leave a command neither acked nor
retried; and a link a provider answers is only followed on its own host."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from hypothesis import example, given
from hypothesis import strategies as st

from mailbridge.mail_worker.adapters.api_calls import Unpaced
from mailbridge.mail_worker.adapters.api_http import ApiHttp
from mailbridge.mail_worker.adapters.gmail import GmailApi
from mailbridge.mail_worker.adapters.graph import GraphApi
from mailbridge.mail_worker.domain import mime
from mailbridge.mail_worker.ports import (
    CursorExpiredError,
    OutcomeUnknownError,
    PollLimits,
    ProviderMailbox,
)
from mailbridge.shared.errors import MailbridgeError
from mailbridge.shared.messages import SendMessage
from tests import strategies as s
from tests.fakes.clock import FixedClock
from tests.fakes.mail_worker import FakeTokens

LIMITS = PollLimits(backlog=3, batch=5, max_message_bytes=100_000)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["id", "raw", "historyId", "history", "messagesAdded", "message", "labelIds", "messages",
     "nextPageToken", "internalDate", "value", "@odata.nextLink", "@odata.deltaLink",
     "receivedDateTime", "@removed", "emailAddress", "mail", "userPrincipalName", "error"]
)  # fmt: skip
SHAPED = st.dictionaries(FIELDS, JSON | st.text(max_size=40), max_size=6)  # near the real shapes
BODIES = st.one_of(
    SHAPED.map(lambda d: json.dumps(d).encode()), JSON.map(lambda d: json.dumps(d).encode()),
    st.binary(max_size=64),
)  # fmt: skip
ANSWERS = st.lists(
    st.tuples(
        st.sampled_from([200, 200, 200, 202, 400, 401, 403, 404, 410, 429, 500, 503]),
        BODIES,
        st.none() | st.sampled_from(["0", "7", "-1", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]),
    ),
    min_size=1,
    max_size=6,
)
CALLS: dict[str, Callable[[ProviderMailbox], Awaitable[Any]]] = {
    "probe": lambda m: m.probe(),
    "first sync": lambda m: m.first_sync(LIMITS),
    "sync": lambda m: m.sync(
        "https://graph.test/v1.0/me/mailFolders/inbox/messages/delta?$deltatoken=a", LIMITS
    ),
    "resync": lambda m: m.resync(1_700_000_000.0, LIMITS, ("a",)),
    "find sent": lambda m: m.find_sent("<cmd_1@example.com>"),
    "send": lambda m: m.send(_outgoing(), _nothing),
}


async def _nothing() -> None:
    return None


def _outgoing() -> mime.Outgoing:
    command = SendMessage(agent_id="a1", command_id="cmd_1", to=["ada@example.com"], subject="Hi")
    return mime.build(command, sender="agent@example.com", now=FixedClock().now())


def _replaying(answers: list[tuple[int, bytes, str | None]]) -> httpx.MockTransport:
    """Each call gets the next answer, the last one again once they run out."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.host in ("gmail.test", "graph.test"), request.url  # never elsewhere
        status, body, wait = answers[min(len(requests), len(answers) - 1)]
        requests.append(request)
        return httpx.Response(status, content=body, headers={"Retry-After": wait} if wait else {})

    return httpx.MockTransport(answer)


async def _outcome(provider: str, call: str, answers: list[tuple[int, bytes, str | None]]) -> None:
    http = ApiHttp(ca_file=None, timeout=5, transport=_replaying(answers))
    api = (
        GmailApi(http, FakeTokens(), Unpaced(), "https://gmail.test")
        if provider == "gmail"
        else GraphApi(http, FakeTokens(), Unpaced(), "https://graph.test/v1.0")
    )
    try:
        await asyncio.wait_for(CALLS[call](api.mailbox("a1")), timeout=10)
    except (MailbridgeError, CursorExpiredError, OutcomeUnknownError):
        pass  # the taxonomy's answer, or the resync signal: what the worker knows how to settle
    finally:
        await http.close()


def _json(*bodies: object) -> list[tuple[int, bytes, str | None]]:
    return [(200, json.dumps(body).encode(), None) for body in bodies]


_PROFILE, _LISTED = {"emailAddress": "a@b.example", "historyId": "5"}, {"messages": [{"id": "m1"}]}


@s.PROPERTIES
@given(st.sampled_from(["gmail", "graph"]), st.sampled_from(sorted(CALLS)), ANSWERS)
@example("gmail", "first sync", _json(_PROFILE, _LISTED, {"id": "m1", "raw": "a"}))  # bad base64
@example(
    "gmail", "first sync", _json(_PROFILE, _LISTED, {"id": "m1", "raw": "", "internalDate": "x"})
)
@example("gmail", "resync", _json(_PROFILE, _LISTED, {"id": "m1", "raw": 7}))
@example("graph", "sync", _json({"value": [{"id": "A", "receivedDateTime": "yesterday"}]}))
@example("graph", "first sync", _json({"value": [{"id": 1}], "@odata.deltaLink": 5}))
def test_any_answer_ends_in_a_result_or_the_taxonomys_error(
    provider: str, call: str, answers: list[tuple[int, bytes, str | None]]
) -> None:
    asyncio.run(_outcome(provider, call, answers))
