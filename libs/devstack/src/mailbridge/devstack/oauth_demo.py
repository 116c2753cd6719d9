"""The two OAuth demo agents of ``make run``: a Google and a Microsoft one, each with its own app
registered at the sandbox provider, so a newcomer can click Authorize and see Connected."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import httpx

from mailbridge.devstack.sandbox import SandboxAdmin

DEMO_ORG = "demo-org"


@dataclass(frozen=True)
class OAuthDemo:
    agent_id: str
    provider: str
    email: str


DEMOS = (
    OAuthDemo("demo-google", "google", "demo@gmail.example"),
    OAuthDemo("demo-microsoft", "microsoft", "demo@contoso.example"),
)


def configure(client: httpx.Client, admin: SandboxAdmin, base_url: str) -> list[OAuthDemo]:
    """Register each demo's app and mailbox at the sandbox and save its config (awaiting
    authorization). ``client`` talks to config-api with an operator key."""
    for demo in DEMOS:
        client_id, secret = f"{demo.agent_id}-app", secrets.token_urlsafe(24)
        admin.register_client(
            demo.provider, client_id, secret, [f"{base_url}/api/engine/oauth/callback"]
        )
        admin.add_user(demo.provider, demo.email, inbox_total=3, unread=1)
        client.put(
            f"/bridge/agents/{demo.agent_id}", json={"org_id": DEMO_ORG, "name": demo.agent_id}
        )
        config = {"provider": demo.provider, "email": demo.email, "client_id": client_id}
        config["client_secret"] = secret
        if demo.provider == "microsoft":
            config["tenant_id"] = "common"
        client.put(f"/bridge/agents/{demo.agent_id}/email-config", json=config).raise_for_status()
    return list(DEMOS)
