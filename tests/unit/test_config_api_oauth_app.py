"""The OAuth app config-api hands the oauth-broker (``rpc.config.oauth_app.get``): the agent's
own, its secret opened, else its org's shared one; with the address the config expects."""

from __future__ import annotations

from typing import Any

from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.handlers import agents, email_config, oauth_app
from mailbridge.config_api.handlers import orgs as handlers_org
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import OAuthAppReply, OrgEmailConfigIn, Provider
from tests.factories import BODY, OPERATOR, SEALER
from tests.fakes.config_api import FakeConfigRepository
from tests.fakes.policy_service import FakePolicyService

GOOGLE_OWN = {
    "provider": "google",
    "email": "support@gmail.example",
    "client_id": "own-google-id",
    "client_secret": "own-google-secret",
}
ORG_APPS = {
    "microsoft": {"client_id": "org-ms-id", "client_secret": "org-ms-secret", "tenant_id": "acme.example"},
    "google": {"client_id": "org-google-id", "client_secret": "org-google-secret"},
}  # fmt: skip


async def saved(body: dict[str, Any] | None, org_apps: dict[str, Any] | None = None) -> Any:
    """Agent a1 of org acme with ``body`` saved, its org sharing ``org_apps``."""
    repo, policy = FakeConfigRepository(), FakePolicyService()
    await agents.register_agent("a1", AgentIn(org_id="acme"), repo=repo, principal=OPERATOR)
    if org_apps is not None:
        apps = OrgEmailConfigIn.model_validate(org_apps)
        await handlers_org.put_org_config("acme", apps, principal=OPERATOR, policy=policy)
    if body is not None:
        await email_config.save_email_config(
            "a1", BODY.validate_python(body), repo=repo, sealer=SEALER, principal=OPERATOR,
            policy=policy,
        )  # fmt: skip
    return repo, policy


async def app_reply(repo: FakeConfigRepository, policy: FakePolicyService) -> OAuthAppReply:
    return await oauth_app.get_oauth_app("a1", repo=repo, sealer=SEALER, policy=policy)


async def test_the_agents_own_app_comes_with_its_secret_opened_and_the_expected_address() -> None:
    repo, policy = await saved(GOOGLE_OWN, org_apps=ORG_APPS)

    reply = await app_reply(repo, policy)

    assert reply.app is not None and reply.error is None
    assert (reply.app.provider, reply.app.client_id) == (Provider.GOOGLE, "own-google-id")
    assert reply.app.client_secret is not None
    assert reply.app.client_secret.get_secret_value() == "own-google-secret"
    assert (reply.app.tenant_id, reply.app.inherited) == (None, False)
    assert reply.expected_email == "support@gmail.example"
    assert "own-google-secret" not in repr(reply)


async def test_a_microsoft_app_without_a_tenant_signs_in_at_common() -> None:
    body = {"provider": "microsoft", "client_id": "ms-id", "client_secret": "ms-secret"}
    repo, policy = await saved(body)

    reply = await app_reply(repo, policy)

    assert reply.app is not None and reply.app.tenant_id == "common"
    assert reply.expected_email is None  # saved without an address: any mailbox may sign in


async def test_without_an_app_of_its_own_the_agent_inherits_its_orgs() -> None:
    repo, policy = await saved({"provider": "microsoft", "email": "a@acme.example"}, ORG_APPS)

    reply = await app_reply(repo, policy)

    assert reply.app is not None
    assert (reply.app.client_id, reply.app.tenant_id) == ("org-ms-id", "acme.example")
    assert reply.app.inherited is True
    assert reply.app.client_secret is not None
    assert reply.app.client_secret.get_secret_value() == "org-ms-secret"
    assert reply.expected_email == "a@acme.example"


async def test_an_org_app_removed_since_leaves_the_agent_without_one() -> None:
    repo, policy = await saved({"provider": "google"}, ORG_APPS)
    await handlers_org.delete_org_config("acme", principal=OPERATOR, policy=policy)

    reply = await app_reply(repo, policy)

    assert reply.app is None and reply.error is not None
    assert reply.error.code is ErrorCode.OAUTH_APP_MISCONFIGURED


async def test_policy_not_answering_is_said_so_not_taken_for_no_app() -> None:
    repo, policy = await saved({"provider": "google"}, ORG_APPS)
    policy.down = True

    reply = await app_reply(repo, policy)

    assert reply.error is not None and reply.error.code is ErrorCode.WORKER_UNAVAILABLE
    assert "policy" in reply.error.message


async def test_an_agent_without_an_oauth_config_has_no_app() -> None:
    imap = {"provider": "imap", "email": "a@fastmail.com", "preset": "fastmail", "password": "p"}
    for body in (None, imap):
        repo, policy = await saved(body, ORG_APPS)
        reply = await app_reply(repo, policy)
        assert reply.app is None and reply.error is not None
        assert reply.error.code is ErrorCode.NOT_CONFIGURED
    reply = await oauth_app.get_oauth_app(
        "nobody", repo=FakeConfigRepository(), sealer=SEALER, policy=FakePolicyService()
    )
    assert reply.error is not None and reply.error.code is ErrorCode.NOT_CONFIGURED
