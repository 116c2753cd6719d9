"""config-api's side of policy: the org routes' use cases, the banners on an agent's config, the
org app an OAuth config may inherit, and the live feed's cursor over the policy stream."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from mailbridge.config_api.adapters.live import Cursor
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.domain.errors import PolicyUnavailable
from mailbridge.config_api.handlers import agents, email_config
from mailbridge.config_api.handlers import orgs as handlers_org
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    ApprovalMode,
    ClientOrgIn,
    ClientOrgView,
    GetEffectivePolicy,
    MailboxStatus,
    OrgEmailConfigIn,
    OrgEmailConfigView,
    OrgOAuthApp,
    PolicyDocumentReply,
    PutOrgConfig,
)
from tests.factories import BODY, OPERATOR, SEALER
from tests.fakes.config_api import FakeConfigRepository
from tests.fakes.policy_service import FakePolicyService

ACME_KEY = Principal("k-acme", "acme")
OTHER_KEY = Principal("k-other", "globex")
ORG_APP = {
    "microsoft": {
        "client_id": "org-app-id",
        "client_secret": "org-app-secret",
        "tenant_id": "acme.example",
    }
}
CLIENT_ORG = ClientOrgIn.model_validate(
    {
        "name": "Acme EMEA",
        "email_domain": "acme.com",
        "restrictions": {"allowed_recipients": ["acme.com"], "max_per_day": 50},
    }
)


async def agent(
    repo: FakeConfigRepository,
    body: dict[str, Any] | None,
    client_org_id: str | None = None,
    approval: str | None = None,
) -> str:
    """Agent a1 of org acme, with this config saved (by an operator, org app or not)."""
    agent_in = AgentIn.model_validate(
        {"org_id": "acme", "client_org_id": client_org_id, "approval": approval}
    )
    await agents.register_agent("a1", agent_in, repo=repo, principal=OPERATOR)
    if body is not None:
        policy = FakePolicyService()
        await handlers_org.put_org_config(
            "acme", OrgEmailConfigIn.model_validate(ORG_APP), principal=OPERATOR, policy=policy
        )
        await save(repo, body, policy)
    return "a1"


async def save(repo: FakeConfigRepository, body: dict[str, Any], policy: FakePolicyService) -> Any:
    return await email_config.save_email_config(
        "a1",
        BODY.validate_python(body),
        repo=repo,
        sealer=SEALER,
        principal=OPERATOR,
        policy=policy,
    )


async def shown(repo: FakeConfigRepository, policy: FakePolicyService) -> Any:
    return await email_config.get_email_config("a1", repo=repo, principal=ACME_KEY, policy=policy)


# The org routes ---------------------------------------------------------------------------------


async def test_an_org_key_cannot_reach_another_orgs_apps_and_policy_is_never_asked() -> None:
    policy = FakePolicyService()
    app = OrgEmailConfigIn.model_validate(ORG_APP)
    for call in (
        handlers_org.get_org_config("acme", principal=OTHER_KEY, policy=policy),
        handlers_org.put_org_config("acme", app, principal=OTHER_KEY, policy=policy),
        handlers_org.delete_org_config("acme", principal=OTHER_KEY, policy=policy),
    ):
        with pytest.raises(MailbridgeError) as raised:
            await call
        assert raised.value.code is ErrorCode.NOT_FOUND
    assert policy.asked == []


async def test_an_org_without_apps_reads_as_both_providers_null() -> None:
    view = await handlers_org.get_org_config("acme", principal=ACME_KEY, policy=FakePolicyService())
    assert (view.org_id, view.microsoft, view.google) == ("acme", None, None)


async def test_an_org_apps_secret_goes_to_policy_and_never_comes_back() -> None:
    policy = FakePolicyService()
    app = OrgEmailConfigIn.model_validate(ORG_APP)

    saved = await handlers_org.put_org_config("acme", app, principal=ACME_KEY, policy=policy)
    read = await handlers_org.get_org_config("acme", principal=ACME_KEY, policy=policy)

    put = policy.asked[0]
    assert isinstance(put, PutOrgConfig)
    assert '"client_secret":"org-app-secret"' in put.model_dump_json()  # on the wire, in clear
    assert "org-app-secret" not in repr(put) and "org-app-secret" not in str(put.model_dump())
    for view in (saved, read):
        assert view.microsoft is not None and view.microsoft.has_client_secret
        assert view.microsoft.client_id == "org-app-id"
        assert "org-app-secret" not in view.model_dump_json()


async def test_another_orgs_client_org_reads_exactly_like_a_missing_one() -> None:
    policy = FakePolicyService()
    await handlers_org.put_client_org("acme", "emea", CLIENT_ORG, principal=ACME_KEY, policy=policy)

    with pytest.raises(MailbridgeError) as other_org:
        await handlers_org.get_client_org("acme", "emea", principal=OTHER_KEY, policy=policy)
    with pytest.raises(MailbridgeError) as missing:
        await handlers_org.get_client_org("globex", "emea", principal=OTHER_KEY, policy=policy)

    assert other_org.value.info() == missing.value.info()
    assert other_org.value.code is ErrorCode.NOT_FOUND


async def test_a_client_org_round_trips_and_deleting_it_twice_is_not_found() -> None:
    policy = FakePolicyService()
    put = await handlers_org.put_client_org(
        "acme", "emea", CLIENT_ORG, principal=ACME_KEY, policy=policy
    )
    got = await handlers_org.get_client_org("acme", "emea", principal=ACME_KEY, policy=policy)
    await handlers_org.delete_client_org("acme", "emea", principal=ACME_KEY, policy=policy)

    assert put == got and got.email_domain == "acme.com"
    with pytest.raises(MailbridgeError) as raised:
        await handlers_org.delete_client_org("acme", "emea", principal=ACME_KEY, policy=policy)
    assert raised.value.code is ErrorCode.NOT_FOUND


STORED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
ORG_VIEW = OrgEmailConfigView(
    org_id="acme",
    microsoft=OrgOAuthApp(client_id="app", has_client_secret=True, updated_at=STORED_AT),
)
CLIENT_ORG_VIEW = ClientOrgView(
    org_id="acme", client_org_id="emea", **dict(CLIENT_ORG), warnings=["w"], updated_at=STORED_AT
)


@pytest.mark.parametrize("document", [ORG_VIEW, CLIENT_ORG_VIEW], ids=["org", "client org"])
def test_a_policy_reply_keeps_its_bytes_and_reads_back_as_the_document_it_carries(
    document: OrgEmailConfigView | ClientOrgView,
) -> None:
    wire = PolicyDocumentReply(document=document).model_dump_json()
    dumped = {"document": document.model_dump(mode="json"), "error": None}  # as it was, a dict
    assert wire == json.dumps(dumped, separators=(",", ":"), ensure_ascii=False)
    read = PolicyDocumentReply.model_validate_json(wire).document
    assert type(read) is type(document) and read == document


async def test_policys_refusal_keeps_its_code_message_and_hint() -> None:
    refusal = ErrorInfo(
        code=ErrorCode.INVALID_INPUT, message="A new app needs its secret.", hint="h"
    )

    class Refusing(FakePolicyService):
        async def document(self, request: Any) -> PolicyDocumentReply:
            return PolicyDocumentReply(error=refusal)

    with pytest.raises(MailbridgeError) as raised:
        await handlers_org.put_org_config(
            "acme", OrgEmailConfigIn(), principal=ACME_KEY, policy=Refusing()
        )
    assert raised.value.info() == refusal


async def test_policy_down_is_503_with_its_own_hint_on_the_org_routes() -> None:
    policy = FakePolicyService()
    policy.down = True
    with pytest.raises(PolicyUnavailable) as raised:
        await handlers_org.get_org_config("acme", principal=ACME_KEY, policy=policy)
    assert raised.value.status == 503
    assert "policy service" in raised.value.info().hint


# The banners on an agent's config ---------------------------------------------------------------


async def test_an_agent_of_a_client_org_shows_its_banner_and_restrictions_as_warnings() -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    await agent(repo, None, client_org_id="emea")
    stored = await handlers_org.put_client_org(
        "acme", "emea", CLIENT_ORG, principal=OPERATOR, policy=policy
    )
    stored_warnings = ["Only recipients at acme.com", "Sends limited to 50 per day"]
    policy.client_orgs[("acme", "emea")] = stored.model_copy(update={"warnings": stored_warnings})

    view = await shown(repo, policy)

    assert view.client_org is not None
    assert (view.client_org.name, view.client_org.email_domain) == ("Acme EMEA", "acme.com")
    assert view.warnings == stored_warnings
    assert view.org_oauth_app is None  # no config yet: no OAuth app to show


async def test_an_oauth_config_without_its_own_app_shows_the_org_app_as_inherited() -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    await agent(repo, {"provider": "microsoft", "email": "ops@acme.com"})
    await handlers_org.put_org_config(
        "acme", OrgEmailConfigIn.model_validate(ORG_APP), principal=OPERATOR, policy=policy
    )

    view = await shown(repo, policy)

    assert view.org_oauth_app is not None
    assert (view.org_oauth_app.inherited, view.org_oauth_app.client_id) == (True, "org-app-id")
    assert view.org_oauth_app.tenant_id == "acme.example"
    asked = policy.asked[-1]
    assert isinstance(asked, GetEffectivePolicy)
    assert (asked.agent_client_id, asked.email, asked.include_secret) == (
        None,
        "ops@acme.com",
        False,
    )


async def test_the_save_answer_shows_the_banners_a_get_would() -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    await agent(repo, None)
    await handlers_org.put_org_config(
        "acme", OrgEmailConfigIn.model_validate(ORG_APP), principal=OPERATOR, policy=policy
    )

    saved = await save(repo, {"provider": "microsoft", "email": "ops@acme.com"}, policy)

    assert saved.org_oauth_app is not None and saved.org_oauth_app.inherited is True
    assert saved == await shown(repo, policy)


async def test_an_oauth_config_with_its_own_app_shows_it_as_not_inherited() -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    own = {"provider": "google", "client_id": "own-id", "client_secret": "own-secret"}
    await agent(repo, own)

    view = await shown(repo, policy)

    assert view.org_oauth_app is not None
    assert (view.org_oauth_app.inherited, view.org_oauth_app.client_id) == (False, "own-id")
    assert view.has_client_secret and "own-secret" not in view.model_dump_json()


async def test_with_policy_down_the_config_still_shows_without_banners_and_a_warning_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    await agent(repo, {"provider": "microsoft"}, client_org_id="emea")
    policy.down = True

    with caplog.at_level(logging.WARNING):
        view = await shown(repo, policy)

    assert view.status is MailboxStatus.AWAITING_AUTHORIZATION
    assert (view.org_oauth_app, view.client_org) == (None, None)
    assert "shown without banners" in caplog.text


async def test_an_imap_agent_without_a_client_org_does_not_ask_policy() -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    imap = {"provider": "imap", "email": "a@fastmail.com", "preset": "fastmail", "password": "x"}
    await agent(repo, imap)

    view = await shown(repo, policy)

    assert policy.asked == [] and view.has_password


# Inheriting the org's app on save ---------------------------------------------------------------


async def test_an_oauth_config_without_an_app_needs_the_orgs_and_says_where_to_set_it() -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    await agent(repo, None)

    with pytest.raises(MailbridgeError) as raised:
        await save(repo, {"provider": "google", "email": "ops@acme.com"}, policy)

    info = raised.value.info()
    assert info.code is ErrorCode.INVALID_INPUT
    assert "/bridge/orgs/acme/email-config" in info.hint
    assert "a1" not in repo.configs


async def test_switching_to_the_orgs_app_drops_the_agents_own_secret() -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    await agent(repo, {"provider": "microsoft", "client_id": "own", "client_secret": "s3"})
    await handlers_org.put_org_config(
        "acme", OrgEmailConfigIn.model_validate(ORG_APP), principal=OPERATOR, policy=policy
    )

    view = await save(repo, {"provider": "microsoft", "email": "ops@acme.com"}, policy)

    assert view.status is MailboxStatus.AWAITING_AUTHORIZATION
    assert view.has_client_secret is False and repo.configs["a1"].sealed_secret is None


async def test_saving_with_policy_down_cannot_check_the_org_app_and_says_so() -> None:
    repo, policy = FakeConfigRepository(), FakePolicyService()
    await agent(repo, None)
    policy.down = True
    with pytest.raises(PolicyUnavailable):
        await save(repo, {"provider": "microsoft"}, policy)


@pytest.mark.parametrize(
    "body",
    [
        {"provider": "microsoft", "client_secret": "s"},
        {"provider": "microsoft", "tenant_id": "contoso.example"},
        {"provider": "google", "client_secret": "s"},
    ],
)
def test_an_apps_secret_or_tenant_without_its_client_id_is_refused(body: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="client_id is required"):
        BODY.validate_python(body)


async def test_credentials_name_the_agents_org_and_client_org_for_send_checks() -> None:
    repo = FakeConfigRepository()
    imap = {"provider": "imap", "email": "a@fastmail.com", "preset": "fastmail", "password": "x"}
    await agent(repo, imap, client_org_id="emea")

    reply = await email_config.get_credentials("a1", repo=repo, sealer=SEALER)

    assert reply.credentials is not None
    assert (reply.credentials.org_id, reply.credentials.client_org_id) == ("acme", "emea")


async def test_credentials_carry_the_agents_own_approval_mode_which_overrides_its_client_orgs() -> (
    None
):
    repo = FakeConfigRepository()
    imap = {"provider": "imap", "email": "a@fastmail.com", "preset": "fastmail", "password": "x"}
    await agent(repo, imap, client_org_id="emea", approval="always")

    reply = await email_config.get_credentials("a1", repo=repo, sealer=SEALER)

    assert reply.credentials is not None
    assert reply.credentials.approval is ApprovalMode.ALWAYS


# The live feed's cursor -------------------------------------------------------------------------


def test_a_cursor_covers_four_feeds_and_an_older_shorter_one_resumes_the_rest_from_now() -> None:
    now = Cursor((40, 30, 20, 10))
    assert Cursor.parse("12-7-3-1") == Cursor((12, 7, 3, 1))
    assert Cursor.parse("12-7-3").completed(now) == Cursor((12, 7, 3, 10))  # type: ignore[union-attr]
    assert Cursor.parse("12-7").completed(now) == Cursor((12, 7, 20, 10))  # type: ignore[union-attr]
    assert Cursor((12, 7, 3, 1)).advanced(3, 9).render() == "12-7-3-9"
    for bad in ("12", "12-7-3-1-5", "a-b", "", None):
        assert Cursor.parse(bad) is None
