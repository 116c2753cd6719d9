"""config-api's side of XOAUTH2: a Google or Microsoft config over IMAP (``transport: imap``), its
servers defaulting to the provider's, the credentials the worker gets for it, and the mail scopes
its sign-in asks for."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mailbridge.config_api.domain.email_config import AgentIn, public_settings
from mailbridge.config_api.domain.oauth import AuthorizeIn
from mailbridge.config_api.handlers import agents, email_config, oauth_flows
from mailbridge.oauth_broker.domain import scopes
from mailbridge.oauth_broker.domain.token_errors import Failure, classify
from mailbridge.shared.messages import BeginOAuthFlow, Credentials
from tests.factories import BODY, OPERATOR, SEALER
from tests.fakes.config_api import FakeConfigRepository, FakeOAuthBroker
from tests.fakes.policy_service import FakePolicyService

GOOGLE = {"provider": "google", "client_id": "g-id", "client_secret": "g-secret"}
MICROSOFT = {"provider": "microsoft", "client_id": "m-id", "client_secret": "m-secret"}
CONFIGS = {"google": GOOGLE, "microsoft": MICROSOFT}
OUTLOOK = "https://outlook.office.com"
DEFAULT_SERVERS = {
    "google": (("imap.gmail.com", 993, "ssl"), ("smtp.gmail.com", 587, "starttls")),
    "microsoft": (("outlook.office365.com", 993, "ssl"), ("smtp.office365.com", 587, "starttls")),
}
MAIL_SCOPES = {
    "google": ["https://mail.google.com/"],
    "microsoft": [f"{OUTLOOK}/IMAP.AccessAsUser.All", f"{OUTLOOK}/SMTP.Send"],
}


def _server(endpoint: Any) -> tuple[str, int, str]:
    return endpoint.host, endpoint.port, endpoint.security


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_over_imap_the_servers_default_to_the_providers(provider: str) -> None:
    body = BODY.validate_python(CONFIGS[provider] | {"transport": "imap"})
    assert (_server(body.imap), _server(body.smtp)) == DEFAULT_SERVERS[provider]
    assert public_settings(body)["transport"] == "imap"


def test_servers_given_are_kept() -> None:
    smtp = {"host": "smtp-mail.outlook.com", "port": 587, "security": "starttls"}
    body = BODY.validate_python(MICROSOFT | {"transport": "imap", "smtp": smtp})
    assert _server(body.smtp) == ("smtp-mail.outlook.com", 587, "starttls")
    assert _server(body.imap) == DEFAULT_SERVERS["microsoft"][0]


@pytest.mark.parametrize("transport", ["api", None])
def test_servers_without_the_imap_transport_are_refused(transport: str | None) -> None:
    imap = {"host": "imap.gmail.com", "port": 993, "security": "ssl"}
    body = GOOGLE | {"imap": imap} | ({"transport": transport} if transport else {})
    with pytest.raises(ValidationError, match="transport imap"):
        BODY.validate_python(body)


def test_an_unknown_transport_is_refused() -> None:
    with pytest.raises(ValidationError):
        BODY.validate_python(GOOGLE | {"transport": "pop3"})


async def saved(provider: str, **extra: object) -> FakeConfigRepository:
    repo = FakeConfigRepository()
    await agents.register_agent("a1", AgentIn(org_id="acme"), repo=repo, principal=OPERATOR)
    body = CONFIGS[provider] | {"email": f"agent@{provider}.example"} | extra
    await email_config.save_email_config(
        "a1", BODY.validate_python(body), repo=repo, sealer=SEALER, principal=OPERATOR,
        policy=FakePolicyService(),
    )  # fmt: skip
    return repo


async def credentials_of(repo: FakeConfigRepository) -> Credentials:
    reply = await email_config.get_credentials("a1", repo=repo, sealer=SEALER)
    assert reply.credentials is not None, reply.error
    return reply.credentials


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_the_worker_gets_the_servers_and_xoauth2_for_a_config_over_imap(
    provider: str,
) -> None:
    found = await credentials_of(await saved(provider, transport="imap"))

    assert (found.xoauth2, found.agent_id, found.email) == (True, "a1", f"agent@{provider}.example")
    assert (_server(found.imap), _server(found.smtp)) == DEFAULT_SERVERS[provider]
    assert found.password is None  # the client secret is the broker's, never the worker's


async def test_a_config_over_the_api_has_neither_servers_nor_xoauth2() -> None:
    found = await credentials_of(await saved("google"))
    assert (found.xoauth2, found.imap, found.smtp) == (False, None, None)


async def begun(repo: FakeConfigRepository, body: AuthorizeIn) -> BeginOAuthFlow:
    broker = FakeOAuthBroker()
    await oauth_flows.begin_authorization(
        "a1", body, "https://ui.example", repo=repo, principal=OPERATOR, broker=broker
    )
    [request] = broker.asked
    assert isinstance(request, BeginOAuthFlow)
    return request


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_authorizing_a_config_over_imap_asks_for_the_mail_scopes(provider: str) -> None:
    repo = await saved(provider, transport="imap")
    asked = ["https://example.test/extra"]

    request = await begun(repo, AuthorizeIn(scopes=[*MAIL_SCOPES[provider], *asked]))

    assert request.scopes == [*MAIL_SCOPES[provider], *asked]  # each once
    assert (await begun(repo, AuthorizeIn())).scopes == MAIL_SCOPES[provider]


async def test_authorizing_a_config_over_the_api_asks_for_nothing_more() -> None:
    assert (await begun(await saved("microsoft"), AuthorizeIn())).scopes == []


def test_a_microsoft_sign_in_does_not_require_outlook_scopes_the_graph_answer_cannot_echo() -> None:
    """The code redeems for Graph; the IMAP/SMTP consent shows when a mail token is refreshed."""
    asked = ["openid", "Mail.ReadWrite", *MAIL_SCOPES["microsoft"]]
    required = scopes.required(asked)
    assert required == ["Mail.ReadWrite"]
    assert scopes.missing(required, ["https://graph.microsoft.com/Mail.ReadWrite"]) == []
    assert scopes.required(["https://mail.google.com/"]) == ["https://mail.google.com/"]


@pytest.mark.parametrize(
    ("codes", "consent_missing"), [([65001], True), ([70000], False), ([], False)]
)
def test_only_aadsts65001_is_a_missing_consent_that_spares_the_grant(
    codes: list[int], consent_missing: bool
) -> None:
    """The broker keeps a Microsoft grant whose mail token was refused for want of consent; a
    revoked grant (any other invalid_grant) ends."""
    refused = classify(400, {"error": "invalid_grant", "error_codes": codes})
    assert refused.failure is Failure.REVOKED
    assert refused.consent_missing is consent_missing
