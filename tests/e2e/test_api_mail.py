"""Mail through the Gmail API and Microsoft Graph, end to end: the running services, the sandbox
provider's mailboxes, an agent authorized through a real sign-in. The same commands, events,
ledger and policy as an IMAP/SMTP agent: a send arrives once and a reply threads, received mail
becomes one event each (also across an expired cursor), a lost answer is resolved ``sent``, a
429 is retried no sooner than its Retry-After, and policy refuses before the API is called."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.shared.messages import AgentUpdated
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import Inbox, settled
from tests.e2e.metrics import counted, metrics_of
from tests.e2e.oauth_agents import OAuthAgent, connected_agent
from tests.e2e.oauth_browser import Browser
from tests.support.waiting import eventually

PROVIDERS = ["google", "microsoft"]
POLLS_ACKED = 'mailbridge_worker_commands_total{command="poll",result="ack"}'


def someone(sandbox: SandboxProvider, provider: str) -> str:
    """A new mailbox at the same look-alike, to send to."""
    address = f"friend-{secrets.token_hex(4)}@{provider}.example"
    sandbox.admin.add_user(provider=provider, email=address)
    return address


async def sent_outcome(api: httpx.AsyncClient, agent: OAuthAgent, **message: Any) -> dict[str, Any]:
    path = f"/bridge/agents/{agent.agent_id}/messages"
    queued = await api.post(path, json={"subject": "Hello", "text": "Hi"} | message)
    assert queued.status_code == 202, queued.text
    return await settled(api, f"{path}/{queued.json()['command_id']}")


def arrived(
    sandbox: SandboxProvider, provider: str, address: str, message_id: str
) -> list[dict[str, Any]]:
    return [m for m in sandbox.admin.mailbox(provider, address) if m["message_id"] == message_id]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_send_arrives_once_with_its_headers_and_a_reply_threads(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    provider: str,
) -> None:  # fmt: skip
    agent = await connected_agent(api, system.base_url, sandbox, browser, provider)
    friend = someone(sandbox, provider)
    question = f"<q-{secrets.token_hex(4)}@example.com>"
    original = sandbox.admin.deliver(
        provider, agent.email, sender=friend, subject="Question", message_id=question
    )

    outcome = await sent_outcome(
        api, agent, to=[friend], subject="Question", text="Answer", in_reply_to=question
    )

    assert outcome["status"] == "sent", outcome
    [landed] = arrived(sandbox, provider, friend, outcome["message_id"])
    assert (landed["subject"], landed["in_reply_to"]) == ("Re: Question", question)
    assert landed["from"].endswith(agent.email) and landed["to"] == [friend]
    [filed] = sandbox.admin.mailbox(provider, agent.email, "sent")
    assert filed["message_id"] == outcome["message_id"]  # filed by the provider, once
    if provider == "google":
        [asked] = [m for m in sandbox.admin.mailbox(provider, agent.email) if m["id"] == original]
        assert filed["thread_id"] == asked["thread_id"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_received_mail_is_one_event_each_also_across_an_expired_cursor(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    js: JetStreamContext, provider: str,
) -> None:  # fmt: skip
    agent = await connected_agent(api, system.base_url, sandbox, browser, provider)
    inbox = Inbox()
    await inbox.subscribe(js, agent.agent_id)
    assert len(await inbox.until(7)) == 7  # the first poll's backlog: all 7 (fewer than 10)

    sandbox.admin.deliver(
        provider, agent.email, sender="ada@example.com", subject="Fresh", text="New"
    )
    fresh = (await inbox.until(8))[7]
    sandbox.admin.expire_cursors(provider)
    sandbox.admin.deliver(provider, agent.email, sender="ada@example.com", subject="After")
    after = (await inbox.until(9))[8]
    await polled_again(system, times=2)

    assert (fresh["subject"], fresh["from"], fresh["text"].strip()) == (
        "Fresh",
        "ada@example.com",
        "New",
    )
    assert fresh["to"] == [agent.email] and fresh["provider_message_id"]
    assert after["subject"] == "After"
    ids = [event["provider_message_id"] for event in inbox.events]
    assert len(ids) == len(set(ids)) == 9  # nothing twice, though the resync read some again


async def polled_again(system: RunningSystem, times: int) -> None:
    """Until the workers acked ``times`` more polls: a duplicate would have been published."""
    start = counted(await metrics_of(system, "mail-worker"), POLLS_ACKED)

    async def enough() -> float | None:
        now = counted(await metrics_of(system, "mail-worker"), POLLS_ACKED)
        return now if now >= start + times else None

    await eventually(enough, what=f"{times} more polls acked", timeout=60)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_send_whose_answer_was_lost_is_found_sent_and_arrived_once(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    provider: str,
) -> None:  # fmt: skip
    agent = await connected_agent(api, system.base_url, sandbox, browser, provider)
    friend = someone(sandbox, provider)
    sandbox.admin.drop_after_send(provider)

    outcome = await sent_outcome(api, agent, to=[friend])

    assert outcome["status"] == "sent", outcome  # unknown, resolved from the sent mail
    assert len(arrived(sandbox, provider, friend, outcome["message_id"])) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_throttled_send_is_retried_no_sooner_than_its_retry_after(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    provider: str,
) -> None:  # fmt: skip
    agent = await connected_agent(api, system.base_url, sandbox, browser, provider)
    friend = someone(sandbox, provider)
    sandbox.admin.throttle(provider, "send", retry_after=3)

    outcome = await sent_outcome(api, agent, to=[friend])

    assert outcome["status"] == "sent", outcome
    sends = [
        r for r in sandbox.admin.requests(provider) if r["email"] == agent.email and _is_send(r)
    ]
    assert [r["status"] for r in sends] == [429, 200 if provider == "google" else 202]
    assert sends[1]["at"] - sends[0]["at"] >= 3.0
    assert len(arrived(sandbox, provider, friend, outcome["message_id"])) == 1


def _is_send(request: dict[str, Any]) -> bool:
    return request["method"] == "POST" and request["path"].endswith(("/send", "/sendMail"))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_policy_refuses_an_api_send_before_the_provider_hears_of_it(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    nc: Client, provider: str,
) -> None:  # fmt: skip
    agent = await connected_agent(api, system.base_url, sandbox, browser, provider)
    client_org = f"client-{secrets.token_hex(4)}"
    rules = {"name": "Acme", "restrictions": {"allowed_recipients": ["*.allowed.example"]}}
    (
        await api.put(f"/bridge/orgs/org-oauth/client-orgs/{client_org}", json=rules)
    ).raise_for_status()
    updated = await nc.subscribe(AgentUpdated.subject_for(agent.agent_id))
    link = {"org_id": "org-oauth", "client_org_id": client_org, "name": agent.agent_id}
    (await api.put(f"/bridge/agents/{agent.agent_id}", json=link)).raise_for_status()
    await updated.next_msg(timeout=30)

    outcome = await sent_outcome(api, agent, to=["someone@elsewhere.example"])

    assert outcome["status"] == "blocked" and outcome["error"]["code"] == "recipient_not_allowed"
    sends = [
        r for r in sandbox.admin.requests(provider) if r["email"] == agent.email and _is_send(r)
    ]
    assert sends == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_token_the_provider_refuses_is_refreshed_once_and_the_send_goes(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    provider: str,
) -> None:  # fmt: skip
    agent = await connected_agent(api, system.base_url, sandbox, browser, provider)
    friend = someone(sandbox, provider)
    refreshes = sandbox.admin.counters()[provider]["refresh"]
    sandbox.admin.fail(provider, "send", "invalid_grant", times=1)  # the send's token: 401

    outcome = await sent_outcome(api, agent, to=[friend])

    assert outcome["status"] == "sent", outcome
    assert sandbox.admin.counters()[provider]["refresh"] == refreshes + 1
    sends = [
        r for r in sandbox.admin.requests(provider) if r["email"] == agent.email and _is_send(r)
    ]
    assert [r["status"] for r in sends] == [401, 200 if provider == "google" else 202]


async def test_graph_is_called_at_most_four_at_a_time_per_mailbox(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider, browser: Browser,
    js: JetStreamContext,
) -> None:  # fmt: skip
    """The first poll reads the 7 messages' MIME at once; each read takes 0.3 s at the sandbox
    (every Microsoft mail read while this test runs: other agents' polls take their share)."""
    sandbox.admin.fail("microsoft", "sync", "slow", delay_seconds=0.3)
    try:
        agent = await connected_agent(api, system.base_url, sandbox, browser, "microsoft")
        inbox = Inbox()
        await inbox.subscribe(js, agent.agent_id)
        await inbox.until(7)
    finally:
        sandbox.admin.clear_failures()
    assert sandbox.admin.concurrency("microsoft", agent.email) == 4  # overlapped, never past 4
