"""The connection test of Google and Microsoft agents: the oauth-broker's token, then the
provider's API, against fakes of both ports; the token source against FastStream's in-memory
broker."""

from __future__ import annotations

import pytest
from faststream.nats import NatsBroker, TestNatsBroker
from pydantic import SecretStr

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.adapters.tokens import NatsTokenSource
from mailbridge.mail_worker.ports import InboxCounts, ProbedMailbox
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import (
    ErrorCode,
    ErrorInfo,
    MailbridgeError,
    PermanentError,
    RetryableError,
)
from mailbridge.shared.messages import (
    AccessTokenReply,
    ConnectionTested,
    Credentials,
    GetAccessToken,
    Provider,
    TestConnection,
    TokenResource,
)
from tests.fakes.mail_worker import (
    FakeCredentials,
    FakeMailApi,
    FakeMailbox,
    FakeProviderMailbox,
    FakeSubmission,
)

GOOGLE = Credentials(provider="google", email="agent@example.com")
MICROSOFT = Credentials(provider="microsoft", email="agent@contoso.example")
IMAP = Credentials(provider="imap", email="agent@example.com", password=SecretStr("pw"))
SEVEN_TWO = InboxCounts(total=7, unread=2)
AT_GMAIL = ProbedMailbox("agent@example.com", SEVEN_TWO)
AT_GRAPH = ProbedMailbox("agent@contoso.example", SEVEN_TWO)


GMAIL_SEND = ("https://www.googleapis.com/auth/gmail.modify",)
GRAPH_SEND = ("https://graph.microsoft.com/Mail.Read", "https://graph.microsoft.com/Mail.Send")


class Apis:
    """A mailbox per provider, and the IMAP and SMTP fakes beside them."""

    def __init__(
        self,
        *,
        gmail: ProbedMailbox | MailbridgeError = AT_GMAIL,
        graph: ProbedMailbox | MailbridgeError = AT_GRAPH,
        gmail_scopes: tuple[str, ...] = GMAIL_SEND,
    ) -> None:
        self.gmail = FakeProviderMailbox(gmail, gmail_scopes)
        self.graph = FakeProviderMailbox(graph, GRAPH_SEND)
        self.submission = FakeSubmission()

    async def test(self, account: Credentials) -> ConnectionTested:
        return await handlers.test_connection(
            TestConnection(agent_id="a1"),
            credentials=FakeCredentials(account),
            mailbox=FakeMailbox(InboxCounts(total=1, unread=1)),
            submission=self.submission,
            apis={
                Provider.GOOGLE: FakeMailApi(self.gmail),
                Provider.MICROSOFT: FakeMailApi(self.graph),
            },
        )


async def test_a_google_agent_is_tested_through_gmail_with_the_brokers_token() -> None:
    apis = Apis()
    result = await apis.test(GOOGLE)
    assert (result.ok, result.email, result.inbox_total, result.unread) == (
        True,
        "agent@example.com",
        7,
        2,
    )
    assert set(result.checks) == {"api", "mailbox", "send"}
    assert all(check.ok for check in result.checks.values())
    assert (apis.gmail.probes, apis.graph.probes) == (1, 0)
    assert apis.submission.checked == []


async def test_a_microsoft_agent_is_tested_through_graph() -> None:
    apis = Apis()
    result = await apis.test(MICROSOFT)
    assert result.ok and result.email == "agent@contoso.example"
    assert (apis.gmail.probes, apis.graph.probes) == (0, 1)


async def test_an_imap_agent_is_still_tested_over_imap_and_smtp() -> None:
    apis = Apis()
    result = await apis.test(IMAP)
    assert result.ok and set(result.checks) == {"imap", "smtp"}
    assert (apis.gmail.probes, apis.graph.probes) == (0, 0)
    assert apis.submission.checked == ["agent@example.com"]


async def test_a_google_agent_over_imap_with_xoauth2_is_tested_over_imap_and_smtp() -> None:
    apis = Apis()
    result = await apis.test(GOOGLE.model_copy(update={"xoauth2": True}))
    assert set(result.checks) == {"imap", "smtp"} and apis.gmail.probes == 0


async def test_a_grant_that_cannot_send_fails_the_send_check_naming_the_scope() -> None:
    readonly = ("https://www.googleapis.com/auth/gmail.readonly",)
    result = await Apis(gmail_scopes=readonly).test(GOOGLE)
    assert not result.ok and result.error is not None
    assert result.error.code is ErrorCode.OAUTH_SCOPE_MISSING
    assert "gmail.send" in result.error.message and "gmail.send" in result.error.hint
    assert result.checks["api"].ok and result.checks["mailbox"].ok
    assert not result.checks["send"].ok


async def test_the_confirmed_address_matches_whatever_its_case() -> None:
    result = await Apis(gmail=ProbedMailbox("Agent@Example.COM", SEVEN_TWO)).test(GOOGLE)
    assert result.ok and result.email == "Agent@Example.COM"


async def test_another_mailbox_fails_the_test_naming_both_addresses() -> None:
    result = await Apis(gmail=ProbedMailbox("someone@example.com", SEVEN_TWO)).test(GOOGLE)
    assert not result.ok and result.error is not None
    assert result.error.code is ErrorCode.MAILBOX_MISMATCH
    assert result.error.message == "Signed in as someone@example.com, expected agent@example.com."
    assert "agent@example.com" in result.error.hint
    assert result.checks["api"].ok and not result.checks["mailbox"].ok
    assert (result.email, result.inbox_total, result.unread) == (None, None, None)


@pytest.mark.parametrize(
    "code",
    [
        ErrorCode.OAUTH_NOT_AUTHORIZED,
        ErrorCode.OAUTH_TOKEN_REVOKED,
        ErrorCode.OAUTH_APP_MISCONFIGURED,
    ],
)
async def test_the_brokers_refusal_ends_the_test_as_the_broker_said_it(code: ErrorCode) -> None:
    said = ErrorInfo.of(code).saying("Told precisely by the broker.")
    apis = Apis()
    apis.graph.scopes_error = PermanentError.explained(said)
    result = await apis.test(MICROSOFT)
    assert not result.ok and result.error == said
    assert result.checks == {} and apis.graph.probes == 0


@pytest.mark.parametrize(
    "error",
    [
        PermanentError(ErrorCode.OAUTH_TOKEN_REVOKED),
        PermanentError(ErrorCode.OAUTH_SCOPE_MISSING),
        RetryableError(ErrorCode.PROVIDER_THROTTLED),
        RetryableError(ErrorCode.PROVIDER_UNAVAILABLE),
        RetryableError(ErrorCode.TLS_FAILED),
    ],
)
async def test_an_api_failure_fails_the_api_check_with_its_code(error: MailbridgeError) -> None:
    result = await Apis(gmail=error).test(GOOGLE)
    assert not result.ok and result.error is not None
    assert result.error.code is error.code
    assert set(result.checks) == {"api"} and result.checks["api"].error == result.error
    assert result.email is None and result.inbox_total is None


def answering(reply: AccessTokenReply) -> tuple[NatsBroker, list[GetAccessToken]]:
    """A broker whose oauth-broker answers ``reply`` and keeps what it was asked."""
    broker, asked = NatsBroker(), []
    subject = GetAccessToken(agent_id="a1").nats_subject()

    @broker.subscriber(subject)
    async def access_token_get(request: GetAccessToken) -> str:
        asked.append(request)
        return reply.model_dump_json()

    return broker, asked


async def test_the_token_source_asks_for_the_api_token_and_keeps_it_secret() -> None:
    broker, asked = answering(AccessTokenReply(access_token=SecretStr("token-1")))
    async with TestNatsBroker(broker) as connected:
        token = await NatsTokenSource(NatsBus(connected), timeout=1).access_token("a1")
    assert token.get_secret_value() == "token-1" and "token-1" not in repr(token)
    assert [(r.agent_id, r.resource) for r in asked] == [("a1", TokenResource.API)]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (ErrorCode.OAUTH_NOT_AUTHORIZED, PermanentError),
        (ErrorCode.OAUTH_TOKEN_REVOKED, PermanentError),
        (ErrorCode.OAUTH_APP_MISCONFIGURED, PermanentError),
        (ErrorCode.PROVIDER_UNAVAILABLE, RetryableError),
    ],
)
async def test_the_token_source_raises_the_brokers_error_unchanged(
    code: ErrorCode, kind: type[MailbridgeError]
) -> None:
    said = ErrorInfo.of(code).saying("As the broker put it.")
    broker, _ = answering(AccessTokenReply(error=said))
    async with TestNatsBroker(broker) as connected:
        with pytest.raises(kind) as raised:
            await NatsTokenSource(NatsBus(connected), timeout=1).access_token("a1")
    assert raised.value.info() == said
