"""``POST …/email-config/authorize`` and ``GET /bridge/oauth/flows/{flow_id}``, the broker
faked: the UI origin a flow reports to, what is refused before the broker is asked, the broker's
refusals as problems, and a flow seen only by its agent's org."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.domain.oauth import AuthorizeIn
from mailbridge.config_api.handlers import agents, email_config, oauth_flows
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    BeginOAuthFlow,
    FlowStatus,
    OAuthFlowBegun,
    OAuthFlowView,
    Provider,
)
from tests.factories import BODY, OPERATOR, SEALER
from tests.fakes.config_api import FakeConfigRepository, FakeOAuthBroker
from tests.fakes.policy_service import FakePolicyService
from tests.support.config_api_app import ADMIN, OAUTH_SETTINGS, UI, api_client, container, problem

AUTHORIZE = "/bridge/agents/a1/email-config/authorize"
GOOGLE = {"provider": "google", "client_id": "google-id", "client_secret": "google-secret"}
ACME, GLOBEX = Principal("k-acme", "acme"), Principal("k-globex", "globex")


@pytest.fixture
def broker() -> FakeOAuthBroker:
    return FakeOAuthBroker()


@pytest.fixture
async def api(broker: FakeOAuthBroker) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container(settings=OAUTH_SETTINGS, oauth=broker)) as client:
        (await client.put("/bridge/agents/a1/email-config", json=GOOGLE)).raise_for_status()
        yield client


async def google_agent_of_acme() -> tuple[FakeConfigRepository, FakeOAuthBroker]:
    """For the handlers, called with an org key: agent a1 of acme, its Google config saved."""
    repo = FakeConfigRepository()
    await agents.register_agent("a1", AgentIn(org_id="acme"), repo=repo, principal=OPERATOR)
    await email_config.save_email_config(
        "a1", BODY.validate_python(GOOGLE), repo=repo, sealer=SEALER, principal=OPERATOR,
        policy=FakePolicyService(),
    )  # fmt: skip
    return repo, FakeOAuthBroker()


def begun_with(broker: FakeOAuthBroker) -> BeginOAuthFlow:
    [request] = broker.asked
    assert isinstance(request, BeginOAuthFlow)
    return request


# authorize --------------------------------------------------------------------------------------


async def test_authorizing_begins_a_flow_that_reports_to_the_requests_origin(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    answer = await api.post(AUTHORIZE, headers={"Origin": ADMIN})

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "authorization_url": broker.begun.authorization_url,
        "flow_id": "flow_1",
        "expires_at": "2030-01-01T00:00:00Z",
    }
    request = begun_with(broker)
    assert (request.agent_id, request.provider, request.ui_origin) == ("a1", Provider.GOOGLE, ADMIN)
    assert (request.reauthorize, request.scopes) == (False, [])


@pytest.mark.parametrize(
    ("headers", "origin"),
    [({"Referer": f"{ADMIN}/agents/a1/email?tab=oauth"}, ADMIN), ({}, UI)],
    ids=["referer", "first-ui-origin"],
)
async def test_without_an_origin_the_referers_then_the_first_ui_origin_is_used(
    api: httpx.AsyncClient, broker: FakeOAuthBroker, headers: dict[str, str], origin: str
) -> None:
    (await api.post(AUTHORIZE, headers=headers)).raise_for_status()
    assert begun_with(broker).ui_origin == origin


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "https://ui.example:8443"])
async def test_an_origin_not_listed_is_refused_naming_the_setting(
    api: httpx.AsyncClient, broker: FakeOAuthBroker, origin: str
) -> None:
    answer = await api.post(AUTHORIZE, headers={"Origin": origin})

    body = problem(answer)
    assert (answer.status_code, body["code"]) == (422, "invalid_input")
    assert origin in body["title"] and "MAILBRIDGE_UI_ORIGINS" in body["hint"]
    assert broker.asked == []


async def test_reauthorizing_asks_for_the_added_scopes(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    body = {"reauthorize": True, "scopes": ["https://mail.google.com/"]}
    (await api.post(AUTHORIZE, json=body)).raise_for_status()
    request = begun_with(broker)
    assert (request.reauthorize, request.scopes) == (True, ["https://mail.google.com/"])


@pytest.mark.parametrize(
    "body",
    [{"scopes": ["two words"]}, {"scopes": ['"quoted"']}, {"origin": UI}, {"reauthorize": "x"}],
)
async def test_a_malformed_body_is_refused_before_the_broker_is_asked(
    api: httpx.AsyncClient, broker: FakeOAuthBroker, body: dict[str, Any]
) -> None:
    answer = await api.post(AUTHORIZE, json=body)
    assert (answer.status_code, problem(answer)["code"]) == (422, "invalid_input")
    assert broker.asked == []


async def test_an_imap_agent_or_one_without_a_config_has_nothing_to_authorize(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    imap = {"provider": "imap", "email": "a@fastmail.com", "preset": "fastmail", "password": "p"}
    (await api.put("/bridge/agents/a1/email-config", json=imap)).raise_for_status()
    (await api.put("/bridge/agents/a2", json={"org_id": "acme"})).raise_for_status()
    for agent_id in ("a1", "a2"):
        answer = await api.post(f"/bridge/agents/{agent_id}/email-config/authorize")
        assert (answer.status_code, problem(answer)["code"]) == (409, "not_configured")
    assert broker.asked == []


async def test_the_brokers_refusal_keeps_its_code_and_words(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    refusal = ErrorInfo.of(ErrorCode.OAUTH_APP_MISCONFIGURED).saying("The OAuth app has no secret.")
    broker.begun = OAuthFlowBegun(error=refusal)

    answer = await api.post(AUTHORIZE)

    body = problem(answer)
    assert (answer.status_code, body["code"], body["title"]) == (
        422, "oauth_app_misconfigured", "The OAuth app has no secret.",
    )  # fmt: skip


async def test_a_broker_that_does_not_answer_is_a_503(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    broker.down = True
    answer = await api.post(AUTHORIZE)
    body = problem(answer)
    assert (answer.status_code, body["code"]) == (503, "worker_unavailable")
    assert "oauth-broker" in body["title"]


async def test_another_orgs_agent_is_answered_like_a_missing_one() -> None:
    repo, broker = await google_agent_of_acme()
    with pytest.raises(MailbridgeError) as refused:
        await oauth_flows.begin_authorization(
            "a1", AuthorizeIn(), UI, repo=repo, principal=GLOBEX, broker=broker
        )
    assert refused.value.code is ErrorCode.NOT_FOUND and broker.asked == []


# a flow's status --------------------------------------------------------------------------------


def view(agent_id: str) -> OAuthFlowView:
    return OAuthFlowView(
        flow_id="flow_1", agent_id=agent_id, provider=Provider.GOOGLE, status=FlowStatus.PENDING,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )  # fmt: skip


async def test_a_flows_status_is_answered_for_its_agent(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    broker.views["flow_1"] = view("a1")

    answer = await api.get("/bridge/oauth/flows/flow_1")

    assert answer.status_code == 200
    assert answer.json() == {
        "flow_id": "flow_1", "agent_id": "a1", "provider": "google", "status": "pending",
        "email": None, "expires_at": "2030-01-01T00:00:00Z", "error": None,
    }  # fmt: skip


async def test_an_unknown_flow_is_a_404(api: httpx.AsyncClient) -> None:
    answer = await api.get("/bridge/oauth/flows/flow_unknown")
    assert (answer.status_code, problem(answer)["code"]) == (404, "not_found")


async def test_another_orgs_flow_is_answered_like_an_unknown_one() -> None:
    repo, broker = await google_agent_of_acme()
    broker.views["flow_1"] = view("a1")

    mine = await oauth_flows.get_flow("flow_1", repo=repo, principal=ACME, broker=broker)
    with pytest.raises(MailbridgeError) as theirs:
        await oauth_flows.get_flow("flow_1", repo=repo, principal=GLOBEX, broker=broker)
    del broker.views["flow_1"]
    with pytest.raises(MailbridgeError) as unknown:
        await oauth_flows.get_flow("flow_1", repo=repo, principal=ACME, broker=broker)

    assert mine.agent_id == "a1"
    assert theirs.value.info() == unknown.value.info()
    assert theirs.value.code is ErrorCode.NOT_FOUND
