"""XOAUTH2 over IMAP and SMTP with the mail-worker's real adapters, against the local Dovecot and
Postfix whose oauth2 passdb asks the sandbox provider (RFC 7662 introspection, over TLS) whether
a token may open the mailbox: Google-shaped tokens (``https://mail.google.com/``) and
Microsoft-shaped ones (the ``outlook.office.com`` resource), each minted by the code flow at the
sandbox and handed out by a stand-in token source, as the oauth-broker would."""

from __future__ import annotations

import asyncio
import base64
import secrets
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from pydantic import SecretStr

from mailbridge.config_api.domain.email_config import MAIL_SCOPES as MAIL_SCOPES_OF
from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.devstack.sandbox import SandboxAdmin, SandboxProvider
from mailbridge.mail_worker.adapters.imap import AioimaplibMailboxReader
from mailbridge.mail_worker.adapters.network import AddressGuard, Network
from mailbridge.mail_worker.adapters.sessions import HostBudget, SessionLimits
from mailbridge.mail_worker.adapters.smtp import AiosmtplibSmtp
from mailbridge.mail_worker.adapters.tokens import broker_refusal
from mailbridge.mail_worker.adapters.xoauth2 import (
    MailTokenSource,
    challenge_fields,
    initial_response,
)
from mailbridge.mail_worker.domain import mime
from mailbridge.mail_worker.ports import TokenGrant
from mailbridge.oauth_broker.adapters.postgres import SCHEMA, Grant, PostgresGrants
from mailbridge.oauth_broker.adapters.provider import HttpAuthorizationServers
from mailbridge.oauth_broker.domain.tokens import TokenSet
from mailbridge.oauth_broker.handlers.tokens import TokenDeps, access_token
from mailbridge.oauth_broker.settings import GMAIL_SCOPES, GRAPH_SCOPES, OAuthBrokerSettings
from mailbridge.shared.clock import SystemClock
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.messages import (
    Credentials,
    GetAccessToken,
    OAuthApp,
    OAuthAppReply,
    Provider,
    SendMessage,
    ServerEndpoint,
    TokenResource,
)
from mailbridge.shared.outbound import tls_context
from tests.integration import test_sandbox_provider as flows
from tests.integration.conftest import outbox_pool
from tests.support.token_checking_mail import mail_stack_checking_tokens
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

# The sandbox's own fixtures: a sandbox for this module, its HTTP client and its admin levers.
sandbox, http, admin = flows.sandbox, flows.http, flows.admin

GOOGLE_MAIL = "openid email https://mail.google.com/"
OUTLOOK = "https://outlook.office.com"
MICROSOFT_MAIL = f"openid email offline_access {OUTLOOK}/IMAP.AccessAsUser.All {OUTLOOK}/SMTP.Send"
MAIL_SCOPES = {"google": GOOGLE_MAIL, "microsoft": MICROSOFT_MAIL}
API_ONLY = {"google": f"openid email {flows.GMAIL}", "microsoft": flows.GRAPH_SCOPES}
PROVIDERS = ["google", "microsoft"]
DELIVERY_DEADLINE = 30.0
BROKER_MIGRATIONS = Path(__file__).resolve().parents[2] / "services/oauth-broker/migrations"


@pytest.fixture(scope="module")
def oauth_stack(sandbox: SandboxProvider) -> Iterator[MailStack]:
    """A mail stack of its own whose Dovecot checks XOAUTH2 tokens at this module's sandbox."""
    with mail_stack_checking_tokens(sandbox) as stack:
        yield stack


@dataclass
class Tokens:
    """Stands in for the oauth-broker: hands out one token, and records what was asked."""

    token: str
    asked: list[TokenResource] = field(default_factory=list)

    async def grant(
        self,
        agent_id: str,
        *,
        refused: SecretStr | None = None,
        resource: TokenResource = TokenResource.API,
    ) -> TokenGrant:
        self.asked.append(resource)
        return TokenGrant(SecretStr(self.token))


@dataclass
class Mailbox:
    """A mailbox of the stack whose owner signed in at the sandbox's ``provider``."""

    stack: MailStack
    provider: str
    address: str
    app: flows.Client

    @property
    def endpoints(self) -> MailStackEndpoints:
        return self.stack.endpoints

    def token(self, scope: str | None = None) -> str:
        signed_in = self.app.sign_in(scope or MAIL_SCOPES[self.provider])
        token: str = signed_in["access_token"]
        return token

    def credentials(self) -> Credentials:
        host, endpoints = self.endpoints.host, self.endpoints
        return Credentials(
            provider=Provider(self.provider),
            email=self.address,
            imap=ServerEndpoint(host=host, port=endpoints.imap_port, security="ssl"),
            smtp=ServerEndpoint(host=host, port=endpoints.smtp_starttls_port, security="starttls"),
            xoauth2=True,
            agent_id=f"agent-{self.provider}",
        )

    def adapters(self, token: str) -> tuple[AioimaplibMailboxReader, AiosmtplibSmtp, Tokens]:
        tokens = Tokens(token)
        return (*self.adapters_on(tokens), tokens)

    def adapters_on(
        self, tokens: MailTokenSource
    ) -> tuple[AioimaplibMailboxReader, AiosmtplibSmtp]:
        guard = AddressGuard(allow_internal=True, timeout=10)
        network = Network(guard, tls_context(self.endpoints.ca_file), 10)
        sessions = SessionLimits(HostBudget(limit=8))
        return (
            AioimaplibMailboxReader(network, sessions, tokens),
            AiosmtplibSmtp(network, sessions, tokens),
        )


def new_mailbox(
    stack: MailStack, http: httpx.Client, admin: SandboxAdmin, provider: str
) -> Mailbox:
    """A new mailbox whose owner is a new user of a new app at the sandbox's ``provider``."""
    local = f"{provider[0]}-{secrets.token_hex(4)}"
    address = stack.create_mailbox(local, secrets.token_urlsafe(12))
    app = flows.Client(http, admin, provider)
    app.email = address
    admin.add_user(provider, address)
    return Mailbox(stack, provider, address, app)


@pytest.fixture(params=PROVIDERS)
def mailbox(
    request: pytest.FixtureRequest, oauth_stack: MailStack, http: httpx.Client, admin: SandboxAdmin
) -> Mailbox:
    """A new mailbox of three messages, two unread."""
    found = new_mailbox(oauth_stack, http, admin, request.param)
    for subject, seen in (("one", True), ("two", False), ("three", False)):
        oauth_stack.seed_message(found.address, subject=subject, body="hello", seen=seen)
    return found


async def test_imap_login_with_a_mail_token_counts_the_inbox(mailbox: Mailbox) -> None:
    reader, _, tokens = mailbox.adapters(mailbox.token())

    counts = await reader.inbox_counts(mailbox.credentials())

    assert (counts.total, counts.unread) == (3, 2)
    assert tokens.asked == [TokenResource.MAIL]


async def test_smtp_submission_with_a_mail_token_is_delivered(mailbox: Mailbox) -> None:
    _, smtp, tokens = mailbox.adapters(mailbox.token())
    command = SendMessage(
        agent_id="xoauth2", command_id=f"cmd-{secrets.token_hex(4)}", to=[mailbox.address],
        subject="over xoauth2", text="hi",
    )  # fmt: skip
    outgoing = mime.build(command, sender=mailbox.address, now=SystemClock().now())

    async def data_starting() -> None:
        return None

    await smtp.check_auth(mailbox.credentials())
    accepted = await smtp.submit(mailbox.credentials(), outgoing, data_starting)
    await smtp.close()

    assert accepted == [mailbox.address]
    assert tokens.asked == [TokenResource.MAIL, TokenResource.MAIL]

    async def arrived() -> bool:
        return await asyncio.to_thread(mailbox.stack.count_messages, mailbox.address) == 4

    await eventually(arrived, what="the message in the inbox", timeout=DELIVERY_DEADLINE)


async def refusals(mailbox: Mailbox, token: str) -> tuple[ErrorCode, ErrorCode]:
    """What IMAP and SMTP say of ``token``: both login attempts' error codes."""
    reader, smtp, _ = mailbox.adapters(token)
    codes = []
    for attempt in (reader.inbox_counts, smtp.check_auth):
        with pytest.raises(MailbridgeError) as refused:
            await attempt(mailbox.credentials())
        codes.append(refused.value.code)
    return codes[0], codes[1]


async def test_a_revoked_token_is_oauth_token_revoked(
    mailbox: Mailbox, admin: SandboxAdmin
) -> None:
    token = mailbox.token()
    admin.revoke_user(mailbox.provider, mailbox.address)

    assert await refusals(mailbox, token) == (ErrorCode.OAUTH_TOKEN_REVOKED,) * 2


async def test_an_expired_token_is_oauth_token_revoked(
    mailbox: Mailbox, admin: SandboxAdmin
) -> None:
    admin.set_token_lifetime(mailbox.provider, 1)
    try:
        token = mailbox.token()
    finally:
        admin.set_token_lifetime(mailbox.provider, 3599)
    time.sleep(1.1)

    assert await refusals(mailbox, token) == (ErrorCode.OAUTH_TOKEN_REVOKED,) * 2


async def test_a_token_without_the_mail_scope_is_refused_as_dovecot_says(
    mailbox: Mailbox,
) -> None:
    """A Gmail API or Graph token does not open IMAP or SMTP. Dovecot's XOAUTH2 answers every
    refusal with ``{"status":"401",…}``, which says nothing of scopes: revoked."""
    token = mailbox.token(API_ONLY[mailbox.provider])

    assert await refusals(mailbox, token) == (ErrorCode.OAUTH_TOKEN_REVOKED,) * 2


async def test_password_login_is_unchanged_beside_the_oauth2_passdb(mailbox: Mailbox) -> None:
    reader, _, _ = mailbox.adapters("unused")
    mailbox.stack.create_mailbox(mailbox.address.partition("@")[0], "pw-secret")  # reset
    credentials = mailbox.credentials().model_copy(
        update={"xoauth2": False, "password": SecretStr("pw-secret")}
    )

    assert (await reader.inbox_counts(credentials)).total == 3


async def test_dovecot_answers_a_refused_xoauth2_with_a_json_challenge_then_no(
    mailbox: Mailbox,
) -> None:
    """The shape the adapters read, seen on the wire: SMTP ``334 <base64 JSON>``, an empty line,
    then ``535``."""
    context = ssl.create_default_context(cafile=str(mailbox.endpoints.ca_file))
    client = aiosmtplib.SMTP(
        hostname=mailbox.endpoints.host,
        port=mailbox.endpoints.smtp_starttls_port,
        start_tls=True,
        tls_context=context,
    )
    await client.connect()
    try:
        response = initial_response(mailbox.address, "not-a-token").encode()
        challenge = await client.execute_command(b"AUTH", b"XOAUTH2", response)
        final = await client.execute_command(b"")
    finally:
        client.close()

    assert challenge.code == 334
    assert challenge_fields(challenge.message.encode())["status"] == "401"
    assert final.code == 535
    assert base64.b64decode(challenge.message)  # base64, not text


def test_dovecot_imap_sends_the_same_challenge_before_no(mailbox: Mailbox) -> None:
    """IMAP's shape on the wire: ``+ <base64 JSON>``, an empty line, then the tagged ``NO``."""
    endpoints = mailbox.endpoints
    context = ssl.create_default_context(cafile=str(endpoints.ca_file))
    response = initial_response(mailbox.address, "not-a-token")
    with (
        socket.create_connection((endpoints.host, endpoints.imap_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=endpoints.host) as tls,
        tls.makefile("rwb") as wire,
    ):
        assert wire.readline().startswith(b"* OK")
        wire.write(f"a1 AUTHENTICATE XOAUTH2 {response}\r\n".encode())
        wire.flush()
        challenge = wire.readline()
        wire.write(b"\r\n")
        wire.flush()
        final = wire.readline()

    assert challenge.startswith(b"+ ")
    assert challenge_fields(challenge[2:])["status"] == "401"
    assert final.startswith(b"a1 NO")


# The oauth-broker's mail token, refreshed at the sandbox --------------------------------------

KEYS = generate_key_spec("xoauth2-it")
# what the broker asks at sign-in (its settings' defaults), plus the mail scopes config-api adds
# for a config over IMAP (``sign_in_scopes``)
SIGNED_IN_FOR_IMAP = {
    "google": f"{GMAIL_SCOPES} {' '.join(MAIL_SCOPES_OF[Provider.GOOGLE])}",
    "microsoft": f"{GRAPH_SCOPES} {' '.join(MAIL_SCOPES_OF[Provider.MICROSOFT])}",
}
SIGNED_IN_FOR_THE_API = {"google": GMAIL_SCOPES, "microsoft": GRAPH_SCOPES}


@dataclass
class InProcessBroker:
    """The worker's token source, answered by the broker's own handler in this process."""

    deps: TokenDeps

    async def grant(
        self,
        agent_id: str,
        *,
        refused: SecretStr | None = None,
        resource: TokenResource = TokenResource.API,
    ) -> TokenGrant:
        request = GetAccessToken(agent_id=agent_id, resource=resource, refused=refused)
        reply = await access_token(request, self.deps)
        if reply.error is not None:
            raise broker_refusal(reply.error)
        assert reply.access_token is not None
        return TokenGrant(reply.access_token, tuple(reply.scopes))


@dataclass
class TheAgentsApp:
    app: OAuthApp

    async def app_of(self, agent_id: str) -> OAuthAppReply:
        return OAuthAppReply(agent_id=agent_id, app=self.app)


@pytest.fixture
async def broker_deps(
    fresh_database: str, sandbox: SandboxProvider
) -> AsyncIterator[Callable[[Mailbox], Awaitable[TokenDeps]]]:
    """The broker's token handler on a real PostgreSQL, refreshing at the sandbox over TLS."""
    env = {key.removeprefix("MAILBRIDGE_").lower(): v for key, v in sandbox.settings().items()}
    settings = OAuthBrokerSettings.model_validate(
        env | {"database_url": fresh_database, "sealing_keys": KEYS}
    )
    servers = HttpAuthorizationServers(ca_file=str(sandbox.ca_file), timeout=10)
    async with outbox_pool(fresh_database, SCHEMA, BROKER_MIGRATIONS) as pool:
        await servers.start(None)  # type: ignore[arg-type]  # no JetStream needed

        async def deps_for(mailbox: Mailbox) -> TokenDeps:
            provider = Provider(mailbox.provider)
            app = OAuthApp(
                provider=provider, client_id=mailbox.app.client_id, client_secret=mailbox.app.secret
            )
            grants = PostgresGrants(pool, Sealer(parse_keys(KEYS)), on_outbox_write=lambda: None)
            return TokenDeps(grants, TheAgentsApp(app), servers, SystemClock(), settings)

        try:
            yield deps_for
        finally:
            await servers.stop()


async def broker_grant(deps: TokenDeps, mailbox: Mailbox, scope: str) -> str:
    """The agent's grant as a completed sign-in leaves it: a refresh token, no access token yet."""
    agent_id = mailbox.credentials().agent_id
    assert agent_id is not None
    offline = (
        {"access_type": "offline", "prompt": "consent"} if mailbox.provider == "google" else {}
    )
    refresh_token = mailbox.app.sign_in(scope, **offline)["refresh_token"]
    grant = Grant(
        agent_id, Provider(mailbox.provider), mailbox.address, mailbox.app.client_id,
        scope.split(), TokenSet(refresh_token=refresh_token), None, None, deps.clock.now(),
    )  # fmt: skip
    await deps.grants.authorize(grant, flow_id="no-flow", email=mailbox.address, events=[])
    return agent_id


async def test_the_brokers_mail_token_opens_imap_and_smtp(
    mailbox: Mailbox, broker_deps: Callable[[Mailbox], Awaitable[TokenDeps]]
) -> None:
    """Signed in as a config over IMAP asks; for Microsoft the mail token is the
    outlook.office.com resource's, refreshed apart from the Graph one."""
    deps = await broker_deps(mailbox)
    await broker_grant(deps, mailbox, SIGNED_IN_FOR_IMAP[mailbox.provider])
    reader, smtp = mailbox.adapters_on(InProcessBroker(deps))

    assert (await reader.inbox_counts(mailbox.credentials())).total == 3
    await smtp.check_auth(mailbox.credentials())


async def test_access_removed_at_the_provider_is_found_by_the_refresh_a_refusal_asks_for(
    mailbox: Mailbox, admin: SandboxAdmin, broker_deps: Callable[[Mailbox], Awaitable[TokenDeps]]
) -> None:
    """The broker still holds a mail token the person revoked: Dovecot refuses it, the worker
    asks the broker once for a fresh one naming the refused token, and the broker's refresh
    finds the grant dead (invalid_grant): oauth_token_revoked, and the grant is marked so."""
    deps = await broker_deps(mailbox)
    agent_id = await broker_grant(deps, mailbox, SIGNED_IN_FOR_IMAP[mailbox.provider])
    reader, smtp = mailbox.adapters_on(InProcessBroker(deps))
    await reader.inbox_counts(mailbox.credentials())  # the broker now holds a fresh mail token
    admin.revoke_user(mailbox.provider, mailbox.address)

    with pytest.raises(MailbridgeError) as refused:
        await smtp.check_auth(mailbox.credentials())

    assert refused.value.code is ErrorCode.OAUTH_TOKEN_REVOKED
    grant = await deps.grants.get(agent_id)
    assert grant is not None and grant.dead is not None
    assert grant.dead.code is ErrorCode.OAUTH_TOKEN_REVOKED


async def test_a_microsoft_grant_without_mail_consent_is_scope_missing_before_any_login(
    oauth_stack: MailStack,
    http: httpx.Client,
    admin: SandboxAdmin,
    broker_deps: Callable[[Mailbox], Awaitable[TokenDeps]],
) -> None:
    """Signed in for Graph only: Microsoft refuses the outlook.office.com token (AADSTS65001)."""
    mailbox = new_mailbox(oauth_stack, http, admin, "microsoft")
    deps = await broker_deps(mailbox)
    agent_id = await broker_grant(deps, mailbox, SIGNED_IN_FOR_THE_API["microsoft"])

    mail = await access_token(GetAccessToken(agent_id=agent_id, resource=TokenResource.MAIL), deps)

    assert mail.error is not None and mail.error.code is ErrorCode.OAUTH_SCOPE_MISSING
    graph = await access_token(GetAccessToken(agent_id=agent_id), deps)
    assert graph.access_token is not None  # the grant still works for Graph


async def test_a_google_grant_without_full_mail_access_is_scope_missing_before_any_login(
    oauth_stack: MailStack,
    http: httpx.Client,
    admin: SandboxAdmin,
    broker_deps: Callable[[Mailbox], Awaitable[TokenDeps]],
) -> None:
    """A config switched to IMAP without re-authorizing: the grant has only the Gmail API."""
    mailbox = new_mailbox(oauth_stack, http, admin, "google")
    deps = await broker_deps(mailbox)
    agent_id = await broker_grant(deps, mailbox, SIGNED_IN_FOR_THE_API["google"])

    mail = await access_token(GetAccessToken(agent_id=agent_id, resource=TokenResource.MAIL), deps)

    assert mail.error is not None and mail.error.code is ErrorCode.OAUTH_SCOPE_MISSING
    assert "https://mail.google.com/" in mail.error.message


async def test_a_google_mail_token_is_its_api_token(
    oauth_stack: MailStack,
    http: httpx.Client,
    admin: SandboxAdmin,
    broker_deps: Callable[[Mailbox], Awaitable[TokenDeps]],
) -> None:
    mailbox = new_mailbox(oauth_stack, http, admin, "google")
    deps = await broker_deps(mailbox)
    agent_id = await broker_grant(deps, mailbox, SIGNED_IN_FOR_IMAP["google"])

    mail = await access_token(GetAccessToken(agent_id=agent_id, resource=TokenResource.MAIL), deps)
    api = await access_token(GetAccessToken(agent_id=agent_id), deps)

    assert mail.access_token is not None and api.access_token is not None
    assert mail.access_token.get_secret_value() == api.access_token.get_secret_value()
