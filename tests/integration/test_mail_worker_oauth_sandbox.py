"""The mail-worker's Gmail and Graph connection test against the sandbox provider, over real TLS:
each token minted by the code flow at the sandbox and handed out over real NATS by a stand-in
oauth-broker, the clients built by the worker's composition root from the sandbox's settings."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from pydantic import SecretStr

from mailbridge.devstack.sandbox import SandboxAdmin, SandboxProvider
from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.adapters.api_calls import Unpaced
from mailbridge.mail_worker.adapters.api_http import ApiHttp
from mailbridge.mail_worker.adapters.graph import GraphApi
from mailbridge.mail_worker.adapters.tokens import NatsTokenSource
from mailbridge.mail_worker.bootstrap import build_mail_apis
from mailbridge.mail_worker.ports import InboxCounts, MailApi, ProviderMailbox
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import ErrorCode, MailbridgeError, RetryableError
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    AccessTokenReply,
    ConnectionTested,
    Credentials,
    GetAccessToken,
    Provider,
    TestConnection,
)
from tests.conftest import a_nats_server
from tests.fakes.mail_worker import FakeCredentials, FakeMailbox, FakeSubmission
from tests.integration import test_sandbox_provider as flows
from tests.support.waiting import eventually

# The sandbox's own fixtures: a sandbox for this module, its HTTP client and its admin levers.
sandbox, http, admin = flows.sandbox, flows.http, flows.admin

SCOPES = {"google": f"openid email {flows.GMAIL}", "microsoft": f"{flows.GRAPH_SCOPES} Mail.Send"}
PROVIDERS = ["google", "microsoft"]


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> str:
    """A NATS server of this module's own: on the session's, a running oauth-broker of the e2e
    stack would answer these agents' token requests too (not authorized) and win the race."""
    return a_nats_server(tmp_path_factory.mktemp("oauth-nats"), request.addfinalizer)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[NatsBus]:
    broker = NatsBroker(nats_url)
    await broker.connect()
    yield NatsBus(broker)
    await broker.stop()


@pytest.fixture
async def apis(sandbox: SandboxProvider, bus: NatsBus) -> AsyncIterator[dict[Provider, MailApi]]:
    """Gmail and Graph as the worker builds them, pointed at the sandbox by its settings."""
    env = {key.removeprefix("MAILBRIDGE_").lower(): v for key, v in sandbox.settings().items()}
    built, client = build_mail_apis(MailWorkerSettings.model_validate(env), bus)
    yield built
    await client.close()


@dataclass
class Sandboxed:
    """Users signed in at the sandbox, and connection tests of their agents by the worker."""

    http: httpx.Client
    admin: SandboxAdmin
    nc: NatsClient
    apis: dict[Provider, MailApi]
    bus: NatsBus

    def signed_in(self, provider: str, scope: str | None = None) -> tuple[str, Token]:
        """A new user with 7 messages, 2 unread, signed in to a new app: address and token."""
        app = flows.Client(self.http, self.admin, provider)
        self.admin.add_user(provider, app.email, inbox_total=7, unread=2)
        answer = app.sign_in(scope or SCOPES[provider])
        return app.email, Token(answer["access_token"], answer.get("scope", "").split())

    async def tested(self, provider: str, email: str, token: Token | None) -> ConnectionTested:
        """The connection test of an agent configured with ``email``; the oauth-broker hands
        out ``token``, or does not answer at all (None)."""
        agent_id = new_id("agent")
        async with oauth_broker(self.nc, agent_id, token):
            await self._answering(agent_id, token)
            return await handlers.test_connection(
                TestConnection(agent_id=agent_id),
                credentials=FakeCredentials(Credentials(provider=provider, email=email)),
                mailbox=FakeMailbox(InboxCounts(total=0, unread=0)),
                submission=FakeSubmission(),
                apis=self.apis,
            )

    @asynccontextmanager
    async def mailbox(self, provider: str, token: Token) -> AsyncIterator[ProviderMailbox]:
        """The worker's mailbox of a new agent whose oauth-broker hands out ``token``."""
        agent_id = new_id("agent")
        async with oauth_broker(self.nc, agent_id, token):
            await self._answering(agent_id, token)
            yield self.apis[Provider(provider)].mailbox(agent_id)

    async def _answering(self, agent_id: str, token: Token | None) -> None:
        """Until the stand-in answers on the worker's own connection: right after a subscription
        the server has been seen to answer "no responders" to another connection now and then."""
        if token is None:
            return
        source = NatsTokenSource(self.bus, timeout=1)

        async def answers() -> bool:
            try:
                await source.grant(agent_id)
            except RetryableError:
                return False
            return True

        await eventually(answers, what=f"the stand-in oauth-broker of {agent_id} answering")


@pytest.fixture
def sandboxed(
    http: httpx.Client,
    admin: SandboxAdmin,
    nc: NatsClient,
    apis: dict[Provider, MailApi],
    bus: NatsBus,
) -> Sandboxed:
    return Sandboxed(http, admin, nc, apis, bus)


@dataclass(frozen=True)
class Token:
    value: str
    scopes: list[str]


@asynccontextmanager
async def oauth_broker(nc: NatsClient, agent_id: str, token: Token | None) -> AsyncIterator[None]:
    """Stands in for the oauth-broker: answers the agent's token requests with ``token``."""
    if token is None:
        yield
        return
    answer = AccessTokenReply(access_token=SecretStr(token.value), scopes=token.scopes)
    reply = answer.model_dump_json().encode()

    async def answer(msg: Msg) -> None:
        await msg.respond(reply)

    subscription = await nc.subscribe(GetAccessToken(agent_id=agent_id).nats_subject(), cb=answer)
    await nc.flush()
    try:
        yield
    finally:
        await subscription.unsubscribe()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_authorized_agent_is_tested_through_its_api(
    sandboxed: Sandboxed, provider: str
) -> None:
    email, token = sandboxed.signed_in(provider)
    result = await sandboxed.tested(provider, email.upper(), token)
    assert result.error is None
    assert (result.ok, result.email, result.inbox_total, result.unread) == (True, email, 7, 2)
    assert set(result.checks) == {"api", "mailbox", "send"}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_access_revoked_at_the_provider_is_oauth_token_revoked(
    sandboxed: Sandboxed, provider: str
) -> None:
    email, token = sandboxed.signed_in(provider)
    sandboxed.admin.revoke_user(provider, email)
    result = await sandboxed.tested(provider, email, token)
    assert result.error is not None and result.error.code is ErrorCode.OAUTH_TOKEN_REVOKED
    assert result.error.hint == "Re-authorize."


async def test_no_oauth_broker_answering_is_a_transient_failure(sandboxed: Sandboxed) -> None:
    result = await sandboxed.tested("google", "nobody@example.test", token=None)
    assert result.error is not None and result.error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert result.checks == {}


async def probe_error(mailbox: ProviderMailbox) -> ErrorCode:
    with pytest.raises(MailbridgeError) as raised:
        await mailbox.probe()
    return raised.value.code


@pytest.mark.parametrize(
    ("provider", "scope"), [("google", "openid email"), ("microsoft", "openid User.Read")]
)
async def test_missing_mail_scopes_are_oauth_scope_missing(
    sandboxed: Sandboxed, provider: str, scope: str
) -> None:
    _, token = sandboxed.signed_in(provider, scope)
    async with sandboxed.mailbox(provider, token) as mailbox:
        assert await probe_error(mailbox) is ErrorCode.OAUTH_SCOPE_MISSING


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_throttled_api_is_provider_throttled(sandboxed: Sandboxed, provider: str) -> None:
    _, token = sandboxed.signed_in(provider)
    sandboxed.admin.fail(provider, "api", "429")
    async with sandboxed.mailbox(provider, token) as mailbox:
        assert await probe_error(mailbox) is ErrorCode.PROVIDER_THROTTLED


async def test_graph_names_the_mail_address_before_the_upn(sandboxed: Sandboxed) -> None:
    app = flows.Client(sandboxed.http, sandboxed.admin, "microsoft")
    sandboxed.admin.add_user("microsoft", app.email, upn=app.email, mail=f"mail-{app.email}")
    token = Token(app.sign_in(flows.GRAPH_SCOPES)["access_token"], [])
    async with sandboxed.mailbox("microsoft", token) as mailbox:
        probed = await mailbox.probe()
    assert probed.email == f"mail-{app.email}"


async def test_an_unknown_certificate_is_tls_failed_and_a_closed_port_connection_refused(
    sandbox: SandboxProvider, nc: NatsClient, bus: NatsBus
) -> None:
    untrusting = ApiHttp(ca_file=None, timeout=5)
    with socket.socket() as closed:  # bound, never listening: the port refuses
        closed.bind(("127.0.0.1", 0))
        refused_url = f"https://127.0.0.1:{closed.getsockname()[1]}"
        trusting = ApiHttp(ca_file=str(sandbox.ca_file), timeout=5)
        agent_id = new_id("agent")
        try:
            async with oauth_broker(nc, agent_id, Token("t", [])):
                tls = await probe_error(graph_mailbox(untrusting, bus, sandbox.base_url, agent_id))
                refused = await probe_error(graph_mailbox(trusting, bus, refused_url, agent_id))
        finally:
            await untrusting.close()
            await trusting.close()
    assert (tls, refused) == (ErrorCode.TLS_FAILED, ErrorCode.CONNECTION_REFUSED)


def graph_mailbox(http: ApiHttp, bus: NatsBus, base_url: str, agent_id: str) -> ProviderMailbox:
    return GraphApi(http, NatsTokenSource(bus, 5), Unpaced(), base_url).mailbox(agent_id)
