"""The Gmail and Graph clients of the connection test on httpx's MockTransport: what they ask,
what they read, and each error answer (as the sandbox provider shapes it, OAUTH-FACTS §2) or
network failure turned into its taxonomy code."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from starlette.responses import Response

from mailbridge.mail_worker.adapters.api_calls import Unpaced
from mailbridge.mail_worker.adapters.api_http import ApiHttp
from mailbridge.mail_worker.adapters.gmail import GmailApi, GmailMailbox
from mailbridge.mail_worker.adapters.graph import GraphApi, GraphMailbox
from mailbridge.mail_worker.domain.api_errors import classify_gmail_error, classify_graph_error
from mailbridge.mail_worker.ports import InboxCounts, ProbedMailbox, ProviderMailbox
from mailbridge.sandbox import apis as wire
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError, RetryableError
from tests.fakes.mail_worker import FakeTokens

GMAIL_URL = "https://gmail.test"
GRAPH_URL = "https://graph.test/v1.0"
Answer = Callable[[httpx.Request], httpx.Response]

GMAIL_BODIES = {
    "/gmail/v1/users/me/profile": {"emailAddress": "agent@example.com", "messagesTotal": 9},
    "/gmail/v1/users/me/labels/INBOX": {"id": "INBOX", "messagesTotal": 7, "messagesUnread": 2},
}
GRAPH_BODIES = {
    "/v1.0/me": {"mail": None, "userPrincipalName": "agent@contoso.example"},
    "/v1.0/me/mailFolders/inbox": {"totalItemCount": 7, "unreadItemCount": 2},
}


class Recorded:
    """Answers each path from ``bodies`` and keeps the requests."""

    def __init__(self, bodies: dict[str, object]) -> None:
        self.bodies = bodies
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json=self.bodies[request.url.path])


@pytest.fixture
async def probes() -> AsyncIterator[Callable[[Answer], tuple[GmailMailbox, GraphMailbox]]]:
    clients: list[ApiHttp] = []

    def make(answer: Answer) -> tuple[GmailMailbox, GraphMailbox]:
        http = ApiHttp(ca_file=None, timeout=5, transport=httpx.MockTransport(answer))
        clients.append(http)
        tokens = FakeTokens("token-1")
        gmail = GmailApi(http, tokens, Unpaced(), GMAIL_URL).mailbox("a1")
        return gmail, GraphApi(http, tokens, Unpaced(), GRAPH_URL).mailbox("a1")

    yield make
    for http in clients:
        await http.close()


async def test_gmail_reads_the_profile_address_and_the_inbox_label_counts(
    probes: Callable[[Answer], tuple[GmailMailbox, GraphMailbox]],
) -> None:
    recorded = Recorded(GMAIL_BODIES)
    gmail, _ = probes(recorded)
    probed = await gmail.probe()
    assert probed == ProbedMailbox("agent@example.com", InboxCounts(total=7, unread=2))
    assert {r.headers["authorization"] for r in recorded.requests} == {"Bearer token-1"}
    assert {str(r.url) for r in recorded.requests} == {GMAIL_URL + path for path in GMAIL_BODIES}


async def test_graph_reads_mail_else_the_upn_and_the_inbox_folder_counts(
    probes: Callable[[Answer], tuple[GmailMailbox, GraphMailbox]],
) -> None:
    recorded = Recorded(GRAPH_BODIES)
    _, graph = probes(recorded)
    assert await graph.probe() == ProbedMailbox("agent@contoso.example", InboxCounts(7, 2))
    me = next(r for r in recorded.requests if r.url.path == "/v1.0/me")
    assert me.url.params["$select"] == "mail,userPrincipalName"
    recorded.bodies["/v1.0/me"] = {"mail": "a@contoso.example", "userPrincipalName": "u@x.test"}
    assert (await graph.probe()).email == "a@contoso.example"


def replaying(response: Response) -> Answer:
    """The sandbox's answer (a Starlette response) as the wire carries it."""
    headers = dict(response.headers)
    return lambda request: httpx.Response(
        response.status_code, content=bytes(response.body), headers=headers
    )


async def probe_error(probe: ProviderMailbox) -> MailbridgeError:
    with pytest.raises(MailbridgeError) as raised:
        await probe.probe()
    return raised.value


@pytest.mark.parametrize(
    ("api", "answer", "code"),
    [
        ("gmail", wire.gmail_unauthenticated(), ErrorCode.OAUTH_TOKEN_REVOKED),
        ("gmail", wire.gmail_insufficient_scope(), ErrorCode.OAUTH_SCOPE_MISSING),
        ("gmail", wire.gmail_unavailable("429"), ErrorCode.PROVIDER_THROTTLED),
        ("gmail", wire.gmail_unavailable("500"), ErrorCode.PROVIDER_UNAVAILABLE),
        ("gmail", wire.gmail_unavailable("503"), ErrorCode.PROVIDER_UNAVAILABLE),
        ("graph", wire.graph_unauthenticated(), ErrorCode.OAUTH_TOKEN_REVOKED),
        ("graph", wire.graph_error(403, "ErrorAccessDenied", "No."), ErrorCode.OAUTH_SCOPE_MISSING),
        (
            "graph",
            wire.graph_error(403, "Authorization_RequestDenied", "No."),
            ErrorCode.OAUTH_SCOPE_MISSING,
        ),
        ("graph", wire.graph_unavailable("429"), ErrorCode.PROVIDER_THROTTLED),
        ("graph", wire.graph_unavailable("503"), ErrorCode.PROVIDER_UNAVAILABLE),
        ("graph", wire.graph_unavailable("500"), ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_error_answers_get_their_codes(
    probes: Callable[[Answer], tuple[GmailMailbox, GraphMailbox]],
    api: str,
    answer: Response,
    code: ErrorCode,
) -> None:
    gmail, graph = probes(replaying(answer))
    assert (await probe_error(gmail if api == "gmail" else graph)).code is code


async def test_a_revoked_token_is_final_and_throttling_is_retried(
    probes: Callable[[Answer], tuple[GmailMailbox, GraphMailbox]],
) -> None:
    revoked, _ = probes(replaying(wire.gmail_unauthenticated()))
    _, throttled = probes(replaying(wire.graph_unavailable("429")))
    assert isinstance(await probe_error(revoked), PermanentError)
    assert isinstance(await probe_error(throttled), RetryableError)


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("rateLimitExceeded", ErrorCode.PROVIDER_THROTTLED),
        ("userRateLimitExceeded", ErrorCode.PROVIDER_THROTTLED),
        ("insufficientPermissions", ErrorCode.OAUTH_SCOPE_MISSING),
        ("forbidden", ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
def test_a_gmail_403_is_decided_by_its_reason(reason: str, code: ErrorCode) -> None:
    body = {"error": {"code": 403, "errors": [{"reason": reason}], "message": "insufficient"}}
    assert classify_gmail_error(403, body) is code


def test_codes_not_descriptions_decide() -> None:
    worded = {"error": {"code": "ErrorItemNotFound", "message": "Access is denied: scope."}}
    assert classify_graph_error(403, worded) is ErrorCode.PROVIDER_UNAVAILABLE
    assert classify_graph_error(403, "<html>Forbidden</html>") is ErrorCode.PROVIDER_UNAVAILABLE
    assert classify_gmail_error(401, None) is ErrorCode.OAUTH_TOKEN_REVOKED
    assert classify_gmail_error(502, None) is ErrorCode.PROVIDER_UNAVAILABLE


def failing(cause: BaseException | None, raised: type[httpx.TransportError]) -> Answer:
    """httpx's error for a request that failed on the network, wrapping the socket's ``cause``."""

    def answer(request: httpx.Request) -> httpx.Response:
        if cause is None:
            raise raised("failed", request=request)
        try:
            raise cause
        except BaseException as exc:
            raise raised("failed", request=request) from exc

    return answer


@pytest.mark.parametrize(
    ("cause", "raised", "code"),
    [
        (ConnectionRefusedError(111, "refused"), httpx.ConnectError, ErrorCode.CONNECTION_REFUSED),
        (ssl.SSLCertVerificationError("unknown ca"), httpx.ConnectError, ErrorCode.TLS_FAILED),
        (socket.gaierror(-2, "unknown"), httpx.ConnectError, ErrorCode.DNS_FAILED),
        (None, httpx.ConnectTimeout, ErrorCode.TIMEOUT),
        (None, httpx.ReadTimeout, ErrorCode.TIMEOUT),
        (None, httpx.RemoteProtocolError, ErrorCode.PROVIDER_UNAVAILABLE),
    ],
)
async def test_network_failures_are_classified_as_for_imap(
    probes: Callable[[Answer], tuple[GmailMailbox, GraphMailbox]],
    cause: BaseException | None,
    raised: type[httpx.TransportError],
    code: ErrorCode,
) -> None:
    _, graph = probes(failing(cause, raised))
    error = await probe_error(graph)
    assert error.code is code and isinstance(error, RetryableError)
    assert "token-1" not in str(error)


async def test_an_answer_without_the_fields_is_the_provider_unavailable(
    probes: Callable[[Answer], tuple[GmailMailbox, GraphMailbox]],
) -> None:
    gmail, _ = probes(lambda request: httpx.Response(200, json={"historyId": "1"}))
    assert (await probe_error(gmail)).code is ErrorCode.PROVIDER_UNAVAILABLE


async def test_a_mailbox_graph_does_not_serve_is_told_and_never_retried(
    probes: Callable[[Answer], tuple[GmailMailbox, GraphMailbox]],
) -> None:
    body = {
        "error": {
            "code": "MailboxNotEnabledForRESTAPI",
            "message": "REST API is not yet supported for this mailbox.",
        }
    }
    _, graph = probes(lambda request: httpx.Response(404, json=body))
    error = await probe_error(graph)
    assert isinstance(error, PermanentError) and error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert "on-premises" in error.info().message and "IMAP" in error.info().hint
