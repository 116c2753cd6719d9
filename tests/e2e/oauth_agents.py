"""OAuth agents for the end-to-end tests: an app registered at the sandbox provider, a config
saved through the API, and the steps of a sign-in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from mailbridge.devstack.sandbox import SandboxProvider
from tests.e2e.oauth_browser import Browser, location
from tests.support.waiting import eventually


@dataclass(frozen=True)
class OAuthAgent:
    agent_id: str
    provider: str
    email: str
    client_id: str


async def oauth_agent(
    api: httpx.AsyncClient,
    base_url: str,
    sandbox: SandboxProvider,
    provider: str,
    *,
    expected: str | None = None,
    signs_in_as: str | None = None,
) -> OAuthAgent:
    """An agent with its own app at the sandbox, saved and awaiting authorization."""
    suffix = secrets.token_hex(4)
    agent_id, client_id, client_secret = f"oauth-{suffix}", f"client-{suffix}", f"secret-{suffix}"
    email = signs_in_as or expected or f"agent-{suffix}@{provider}.example"
    sandbox.admin.register_client(
        provider=provider,
        client_id=client_id,
        client_secret=client_secret,
        redirect_uris=[f"{base_url}/api/engine/oauth/callback"],
    )
    sandbox.admin.add_user(provider=provider, email=email, inbox_total=7, unread=2)
    (
        await api.put(f"/bridge/agents/{agent_id}", json={"org_id": "org-oauth", "name": agent_id})
    ).raise_for_status()
    config: dict[str, Any] = {
        "provider": provider,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    if provider == "microsoft":
        config["tenant_id"] = "common"
    if expected is not None:
        config["email"] = expected
    saved = await api.put(f"/bridge/agents/{agent_id}/email-config", json=config)
    assert saved.status_code == 200, saved.text
    assert saved.json()["status"] == "awaiting_authorization"
    return OAuthAgent(agent_id, provider, email, client_id)


async def connected_agent(
    api: httpx.AsyncClient, base_url: str, sandbox: SandboxProvider, browser: Browser,
    provider: str,
) -> OAuthAgent:  # fmt: skip
    """An agent with its own app, signed in at the sandbox and Connected (7 messages, 2 unread)."""
    agent = await oauth_agent(api, base_url, sandbox, provider)
    sign_in(browser, agent, (await authorize(api, agent))["authorization_url"])
    await connected(api, agent)
    return agent


async def authorize(
    api: httpx.AsyncClient, agent: OAuthAgent, *, origin: str | None = None, **body: Any
) -> dict[str, Any]:
    """Begin a flow as the Email tab at ``origin`` would (``Origin`` header), or as a script."""
    headers = {"Origin": origin} if origin else {}
    path = f"/bridge/agents/{agent.agent_id}/email-config/authorize"
    begun = await api.post(path, json=body, headers=headers)
    assert begun.status_code == 200, begun.text
    return dict(begun.json())


async def status_of(api: httpx.AsyncClient, agent: OAuthAgent) -> dict[str, Any]:
    return dict((await api.get(f"/bridge/agents/{agent.agent_id}/email-config")).json())


async def connected(api: httpx.AsyncClient, agent: OAuthAgent) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        view = await status_of(api, agent)
        return view if view["status"] == "connected" else None

    return await eventually(probe, what=f"{agent.agent_id} connected", timeout=60)


async def flow_status(api: httpx.AsyncClient, flow_id: str) -> dict[str, Any]:
    answer = await api.get(f"/bridge/oauth/flows/{flow_id}")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def sign_in(
    browser: Browser, agent: OAuthAgent, authorization_url: str, **consent: Any
) -> httpx.Response:
    """Open the popup's URL, consent at the provider as the agent's mailbox (unless ``email``
    says otherwise), land on the callback page."""
    page = browser.open(authorization_url)
    assert page.status_code == 200, page.text[:300]
    consent.setdefault("email", agent.email)
    return browser.consent(page, **consent)


def callback_url(
    browser: Browser, agent: OAuthAgent, authorization_url: str, base_url: str, **consent: Any
) -> str:
    """Sign in up to the provider's redirect back: the callback URL, not yet opened (to replay
    it, open it elsewhere, or tamper with it)."""
    stop = f"{base_url}/api/engine/oauth/callback"
    return location(sign_in(browser, agent, authorization_url, stop_at=stop, **consent))
