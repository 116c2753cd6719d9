"""Gmail and Graph mailboxes served by two mail-worker replicas: received mail is one event each
while a replica is SIGKILLed and started again, and a Retry-After one replica was told holds
every replica back from that mailbox.

The stack is this module's own (NATS server, database), its workers sharing one consumer, the
pacing bucket and the cursors, as replicas in a deployment do; the session's sandbox stands in
for Google and Microsoft.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.devstack.system import RunningSystem
from tests.e2e.databases import own_system, stack_api, stack_bus
from tests.e2e.mailboxes import Inbox, settled
from tests.e2e.oauth_agents import OAuthAgent, connected_agent
from tests.e2e.oauth_browser import Browser
from tests.e2e.workers import (
    SERVICE,
    ensure_running,
    kill,
    replica_names,
    with_worker_replicas,
)
from tests.support.waiting import eventually

api, bus = stack_api, stack_bus  # this module's stack's client fixtures

WORKERS = 2
WORKER_NAMES = replica_names(SERVICE, WORKERS)
POLL_SECONDS = 1.0
RETRY_AFTER = 4


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, mail_stack: MailStack, sandbox: SandboxProvider,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:  # fmt: skip
    with own_system(
        postgres_dsn, tmp_path_factory.mktemp("api-replicas"), "apirdb",
        ca_file=mail_stack.endpoints.ca_file, providers=sandbox.settings(),
        only={"config-api", "policy", "oauth-broker", SERVICE},
        arrange=with_worker_replicas(WORKERS, ack_wait=20.0), poll_interval=POLL_SECONDS,
    ) as system:  # fmt: skip
        yield system


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_received_mail_is_one_event_each_while_a_replica_is_killed_and_restarted(
    api: httpx.AsyncClient, stack: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    bus: Client, provider: str,
) -> None:  # fmt: skip
    agent = await connected_agent(api, stack.base_url, sandbox, browser, provider)
    inbox = Inbox()
    await inbox.subscribe(bus.jetstream(), agent.agent_id)
    await inbox.until(7)

    for number in range(6):
        sandbox.admin.deliver(provider, agent.email, sender="ada@example.com", subject=f"m{number}")
        if number == 2:
            await asyncio.to_thread(kill, stack.supervisor, WORKER_NAMES[0])
        await inbox.until(8 + number)  # each arrives, whichever replica polled
    await asyncio.to_thread(ensure_running, stack.supervisor, WORKER_NAMES)
    sandbox.admin.deliver(provider, agent.email, sender="ada@example.com", subject="last")
    await inbox.until(14)

    ids = [event["provider_message_id"] for event in inbox.events]
    assert len(ids) == len(set(ids)) == 14
    assert [e["subject"] for e in inbox.events[7:]] == [*(f"m{n}" for n in range(6)), "last"]


@pytest.mark.parametrize("provider", ["google", "microsoft"])
async def test_a_retry_after_holds_back_every_replica_from_that_mailbox(
    api: httpx.AsyncClient, stack: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    provider: str,
) -> None:  # fmt: skip
    agent = await connected_agent(api, stack.base_url, sandbox, browser, provider)
    friend = f"friend-{secrets.token_hex(4)}@{provider}.example"
    sandbox.admin.add_user(provider=provider, email=friend)
    sandbox.admin.throttle(provider, "send", retry_after=RETRY_AFTER)
    path = f"/bridge/agents/{agent.agent_id}/messages"
    body = {"to": [friend], "subject": "Hello", "text": "Hi"}

    first = await api.post(path, json=body | {"subject": "s0"})
    refused_at = await eventually(
        lambda: throttled_at(sandbox, provider, agent), what="the first send answered 429"
    )
    rest = [await api.post(path, json=body | {"subject": f"s{n}"}) for n in range(1, 4)]
    queued = [first, *rest]  # three more, after the 429 but well within its Retry-After
    outcomes = [await settled(api, f"{path}/{q.json()['command_id']}") for q in queued]

    assert [o["status"] for o in outcomes] == ["sent"] * 4
    sends = sends_of(sandbox, provider, agent)
    assert [r["status"] for r in sends].count(429) == 1 and len(sends) == 5
    waited = [r["at"] - refused_at for r in sends if r["status"] != 429]
    assert min(waited) >= RETRY_AFTER  # every replica held back, not only the one told


def sends_of(sandbox: SandboxProvider, provider: str, agent: OAuthAgent) -> list[dict[str, Any]]:
    return [
        r for r in sandbox.admin.requests(provider)
        if r["email"] == agent.email and r["method"] == "POST"
        and r["path"].endswith(("/send", "/sendMail"))
    ]  # fmt: skip


async def throttled_at(sandbox: SandboxProvider, provider: str, agent: OAuthAgent) -> float | None:
    refused = [r["at"] for r in sends_of(sandbox, provider, agent) if r["status"] == 429]
    return refused[0] if refused else None
