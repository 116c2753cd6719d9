"""OAuth end to end: the running services, the sandbox provider, and a browser driven through
every redirect. A flow ends Connected with the confirmed address, or is refused for the reason a
person would be told; the grant behind it refreshes, is revoked, re-authorized, disconnected."""

from __future__ import annotations

import secrets

import asyncpg
import httpx
import pytest

from mailbridge.devstack.sandbox import SandboxProvider
from tests.e2e.conftest import RunningSystem
from tests.e2e.oauth_agents import (
    OAuthAgent,
    authorize,
    callback_url,
    connected,
    flow_status,
    oauth_agent,
    sign_in,
    status_of,
)
from tests.e2e.oauth_browser import Browser, posted_message, query_of

GMAIL_MODIFY = "https://www.googleapis.com/auth/gmail.modify"
MAIL_GOOGLE = "https://mail.google.com/"


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_authorizing_ends_connected_with_the_confirmed_address(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser: Browser,
    provider: str,
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, provider)
    begun = await authorize(api, agent)
    assert begun["authorization_url"].startswith(f"{system.base_url}/api/engine/oauth/start?flow=")

    page = sign_in(browser, agent, begun["authorization_url"])

    assert page.status_code == 200, page.text[:500]
    assert '"status":"completed"' in posted_message(page).replace(" ", "")
    assert "code=" not in page.text and "access_token" not in page.text
    view = await connected(api, agent)
    assert view["last_test"]["email"] == agent.email
    assert (view["last_test"]["inbox_total"], view["last_test"]["unread"]) == (7, 2)
    assert (await flow_status(api, begun["flow_id"]))["status"] == "completed"


async def test_a_replayed_callback_is_refused(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "google")
    begun = await authorize(api, agent)
    url = callback_url(browser, agent, begun["authorization_url"], system.base_url)
    assert browser.open(url).status_code == 200

    replayed = browser.open(url)

    assert replayed.status_code >= 400
    assert "already used" in replayed.text
    assert (await flow_status(api, begun["flow_id"]))["status"] == "completed"


async def test_a_callback_opened_in_another_browser_is_refused_and_the_right_one_still_works(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "microsoft")
    begun = await authorize(api, agent)
    callback = callback_url(browser, agent, begun["authorization_url"], system.base_url)

    with Browser(sandbox.ca_file) as other:
        refused = other.open(callback)
    assert refused.status_code >= 400 and "another browser" in refused.text

    assert browser.open(callback).status_code == 200
    await connected(api, agent)


async def test_a_code_injected_into_another_flow_fails_its_verifier(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    """The code of flow 1 with the state of flow 2: redeemed with flow 2's PKCE verifier, which
    the provider refuses, so the code cannot be used where it was not issued."""
    agent = await oauth_agent(api, system.base_url, sandbox, "google")
    stop = f"{system.base_url}/api/engine/oauth/callback"
    first = query_of(
        callback_url(
            browser, agent, (await authorize(api, agent))["authorization_url"], system.base_url
        )
    )
    second_flow = await authorize(api, agent)
    second = query_of(
        callback_url(browser, agent, second_flow["authorization_url"], system.base_url)
    )

    injected = browser.open(
        f"{stop}?code={first['code']}&state={second['state']}&iss={second['iss']}"
    )

    assert injected.status_code >= 400
    flow = await flow_status(api, second_flow["flow_id"])
    assert flow["status"] == "failed" and flow["error"]["code"] == "oauth_not_authorized"
    assert (await status_of(api, agent))["status"] == "awaiting_authorization"


async def test_an_issuer_other_than_the_providers_is_refused(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "google")
    begun = await authorize(api, agent)
    stop = f"{system.base_url}/api/engine/oauth/callback"
    answer = query_of(callback_url(browser, agent, begun["authorization_url"], system.base_url))

    page = browser.open(
        f"{stop}?code={answer['code']}&state={answer['state']}&iss=https://evil.example"
    )

    assert page.status_code >= 400 and "another provider" in page.text
    assert (await flow_status(api, begun["flow_id"]))["status"] == "failed"


async def test_declining_at_the_provider_cancels_the_flow(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "microsoft")
    begun = await authorize(api, agent)

    page = sign_in(browser, agent, begun["authorization_url"], action="deny")

    assert '"status":"cancelled"' in posted_message(page).replace(" ", "")
    assert (await flow_status(api, begun["flow_id"]))["status"] == "cancelled"
    assert (await status_of(api, agent))["status"] == "awaiting_authorization"


async def test_an_unticked_required_scope_keeps_no_grant(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "google")
    begun = await authorize(api, agent)

    page = sign_in(browser, agent, begun["authorization_url"], untick=(GMAIL_MODIFY,))

    assert page.status_code >= 400
    flow = await flow_status(api, begun["flow_id"])
    assert flow["error"]["code"] == "oauth_scope_missing"
    assert GMAIL_MODIFY in flow["error"]["message"]
    assert (await status_of(api, agent))["status"] == "awaiting_authorization"


async def test_signing_in_as_another_mailbox_is_refused_by_name(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(
        api, system.base_url, sandbox, "microsoft", expected="agent@contoso.example"
    )
    sandbox.admin.add_user(provider="microsoft", email="someone@contoso.example")
    begun = await authorize(api, agent)

    page = sign_in(browser, agent, begun["authorization_url"], email="someone@contoso.example")

    assert page.status_code >= 400
    error = (await flow_status(api, begun["flow_id"]))["error"]
    assert error["code"] == "mailbox_mismatch"
    assert (
        error["message"] == "Signed in as someone@contoso.example, expected agent@contoso.example."
    )


async def test_an_expired_flow_cannot_be_completed(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "google")
    begun = await authorize(api, agent)
    callback = callback_url(browser, agent, begun["authorization_url"], system.base_url)
    connection = await asyncpg.connect(system.database_url)
    try:  # ten minutes pass
        await connection.execute(
            "UPDATE oauth_broker.flows SET expires_at = now() - interval '1 second' WHERE flow_id = $1",
            begun["flow_id"],
        )
    finally:
        await connection.close()

    page = browser.open(callback)

    assert page.status_code >= 400 and "expired" in page.text
    assert (await flow_status(api, begun["flow_id"]))["status"] == "expired"


async def test_revocation_at_the_provider_shows_error_with_the_reauthorize_hint(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "google")
    sign_in(browser, agent, (await authorize(api, agent))["authorization_url"])
    await connected(api, agent)

    sandbox.admin.revoke_user(provider="google", email=agent.email)
    tested = await api.post(f"/bridge/agents/{agent.agent_id}/email-config/test")

    assert tested.json()["ok"] is False
    view = await status_of(api, agent)
    assert view["status"] == "error"
    assert view["last_error"]["code"] == "oauth_token_revoked"
    assert view["last_error"]["hint"] == "Re-authorize."


async def test_reauthorizing_with_more_scopes_replaces_the_grant_only_when_complete(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "google")
    sign_in(browser, agent, (await authorize(api, agent))["authorization_url"])
    await connected(api, agent)

    again = await authorize(api, agent, reauthorize=True, scopes=[MAIL_GOOGLE])
    page = browser.open(again["authorization_url"])
    assert MAIL_GOOGLE in page.text  # the consent screen asks for the added scope
    still = await api.post(f"/bridge/agents/{agent.agent_id}/email-config/test")
    assert still.json()["ok"] is True  # the old grant works while the new one is pending
    browser.consent(page)

    assert (await flow_status(api, again["flow_id"]))["status"] == "completed"
    granted = sandbox.admin.grant(provider="google", email=agent.email)
    assert MAIL_GOOGLE in granted["scopes"]
    await connected(api, agent)


@pytest.mark.parametrize(("provider", "at_provider"), [("google", True), ("microsoft", False)])
async def test_disconnecting_revokes_where_the_provider_allows_and_says_so(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser: Browser,
    provider: str,
    at_provider: bool,
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, provider)
    sign_in(browser, agent, (await authorize(api, agent))["authorization_url"])
    await connected(api, agent)
    revokes_before = sandbox.admin.counters()[provider]["revoke"]

    deleted = await api.delete(f"/bridge/agents/{agent.agent_id}/email-config")

    assert deleted.status_code == 200, deleted.text
    revocation = deleted.json()["revocation"]
    assert revocation["revoked_at_provider"] is at_provider
    assert sandbox.admin.counters()[provider]["revoke"] == revokes_before + int(at_provider)
    if not at_provider:
        assert "no per-grant revocation" in revocation["note"]
    assert (await status_of(api, agent))["status"] == "not_connected"


async def test_an_agent_without_an_app_of_its_own_signs_in_with_its_orgs_shared_app(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser
) -> None:
    org, suffix = f"org-shared-{secrets.token_hex(3)}", secrets.token_hex(4)
    client_id, client_secret = f"org-client-{suffix}", f"org-secret-{suffix}"
    callback = f"{system.base_url}/api/engine/oauth/callback"
    sandbox.admin.register_client("google", client_id, client_secret, [callback])
    shared = {"google": {"client_id": client_id, "client_secret": client_secret}}
    assert (await api.put(f"/bridge/orgs/{org}/email-config", json=shared)).status_code == 200
    agent = OAuthAgent(
        f"inherits-{suffix}", "google", f"inherits-{suffix}@google.example", client_id
    )
    sandbox.admin.add_user("google", agent.email, inbox_total=4, unread=0)
    (await api.put(f"/bridge/agents/{agent.agent_id}", json={"org_id": org})).raise_for_status()
    path = f"/bridge/agents/{agent.agent_id}/email-config"
    saved = await api.put(path, json={"provider": "google"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["org_oauth_app"] == {
        "provider": "google",
        "client_id": client_id,
        "tenant_id": None,
        "inherited": True,
    }

    sign_in(browser, agent, (await authorize(api, agent))["authorization_url"])

    view = await connected(api, agent)
    assert (view["last_test"]["email"], view["last_test"]["inbox_total"]) == (agent.email, 4)
    assert sandbox.admin.grant("google", agent.email, client_id=client_id)["client_id"] == client_id
