"""Google and Microsoft agents over IMAP and SMTP with XOAUTH2, end to end: the running services,
a real sign-in at the sandbox, and a local Dovecot whose oauth2 passdb asks the sandbox about each
token (Postfix's submission authenticates through it). Such an agent is tested, sends and
receives exactly as a password one does.

The stack is this module's own: its mail servers check tokens at the session's sandbox.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.devstack.system import RunningSystem
from tests.e2e.databases import own_system, stack_api, stack_bus
from tests.e2e.mailboxes import Inbox, delivered, settled
from tests.e2e.oauth_browser import Browser
from tests.support.token_checking_mail import mail_stack_checking_tokens
from tests.support.waiting import eventually

api, bus = stack_api, stack_bus  # this module's stack's client fixtures

PROVIDERS = ["google", "microsoft"]


@pytest.fixture(scope="module")
def oauth_mail(sandbox: SandboxProvider) -> Iterator[MailStack]:
    with mail_stack_checking_tokens(sandbox) as stack:
        yield stack


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, oauth_mail: MailStack, sandbox: SandboxProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:  # fmt: skip
    with own_system(
        postgres_dsn, tmp_path_factory.mktemp("xoauth2"), "xoadb",
        ca_file=oauth_mail.endpoints.ca_file, providers=sandbox.settings(), poll_interval=1.0,
    ) as system:  # fmt: skip
        yield system


async def xoauth2_agent(
    api: httpx.AsyncClient, stack: RunningSystem, sandbox: SandboxProvider, mail: MailStack,
    browser: Browser, provider: str,
) -> tuple[str, str]:  # fmt: skip
    """An agent whose mailbox is in the local stack, signed in at the sandbox, Connected over
    IMAP and SMTP: its id and address."""
    suffix = secrets.token_hex(4)
    address = mail.create_mailbox(f"x{provider[0]}-{suffix}", secrets.token_urlsafe(12))
    mail.seed_message(address, subject="already there", body="hello", seen=False)
    agent_id, client_id, secret = f"xo-{suffix}", f"client-{suffix}", f"secret-{suffix}"
    callback = f"{stack.base_url}/api/engine/oauth/callback"
    sandbox.admin.register_client(provider, client_id, secret, [callback])
    sandbox.admin.add_user(provider, address)
    (await api.put(f"/bridge/agents/{agent_id}", json={"org_id": "org-xo"})).raise_for_status()
    endpoints = mail.endpoints
    config = {
        "provider": provider, "email": address, "client_id": client_id, "client_secret": secret,
        "transport": "imap",
        "imap": {"host": endpoints.host, "port": endpoints.imap_port, "security": "ssl"},
        "smtp": {"host": endpoints.host, "port": endpoints.smtp_starttls_port, "security": "starttls"},
    } | ({"tenant_id": "common"} if provider == "microsoft" else {})  # fmt: skip
    saved = await api.put(f"/bridge/agents/{agent_id}/email-config", json=config)
    assert saved.status_code == 200, saved.text
    begun = await api.post(f"/bridge/agents/{agent_id}/email-config/authorize", json={})
    assert begun.status_code == 200, begun.text
    page = browser.open(begun.json()["authorization_url"])
    assert browser.consent(page, email=address).status_code == 200
    return agent_id, address


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_xoauth2_agent_is_tested_sends_and_receives_over_imap_and_smtp(
    api: httpx.AsyncClient, stack: RunningSystem, sandbox: SandboxProvider,
    oauth_mail: MailStack, browser: Browser, bus: Client, provider: str,
) -> None:  # fmt: skip
    agent_id, address = await xoauth2_agent(api, stack, sandbox, oauth_mail, browser, provider)

    async def status() -> dict[str, object] | None:
        view = (await api.get(f"/bridge/agents/{agent_id}/email-config")).json()
        return view if view["status"] in ("connected", "error") else None

    view = await eventually(status, what=f"{agent_id} tested", timeout=60)
    assert view["status"] == "connected", view
    test = view["last_test"]
    assert (test["email"], test["inbox_total"], set(test["checks"])) == (
        address,
        1,
        {"imap", "smtp"},
    )

    inbox = Inbox()
    await inbox.subscribe(bus.jetstream(), agent_id)
    assert (await inbox.until(1))[0]["subject"] == "already there"
    oauth_mail.seed_message(address, subject="fresh", body="new mail", seen=False)
    assert (await inbox.until(2))[1]["subject"] == "fresh"

    friend = oauth_mail.create_mailbox(f"friend-{secrets.token_hex(4)}", "pw-friend-1")
    path = f"/bridge/agents/{agent_id}/messages"
    queued = await api.post(path, json={"to": [friend], "subject": "Hello", "text": "Hi"})
    outcome = await settled(api, f"{path}/{queued.json()['command_id']}")
    assert outcome["status"] == "sent", outcome
    assert await delivered(oauth_mail, friend) == 1
    assert await delivered(oauth_mail, address, "Sent") == 1
