"""Approval before sending, through the real services and the real mail stack: a send that its
client org's ``approval`` mode holds waits, is shown, and goes out once approved (counted in the
recipient's Dovecot inbox and in Postfix's log); a rejected or expired one never goes out.

The stack is this module's own: its config-api lets a held send wait ``EXPIRES_SECONDS`` only,
so the expiry is seen within the test instead of after a day.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack import maillog
from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.supervisor import ServiceProcess
from mailbridge.devstack.system import RunningSystem
from mailbridge.shared.ids import new_id
from mailbridge.shared.streams import MAIL_EVT
from tests.e2e.databases import own_system, stack_api, stack_bus
from tests.e2e.mailboxes import Agent, agent_with_mailbox, delivered, new_recipient, settled
from tests.e2e.test_config_api import matching, sse_events
from tests.support.waiting import eventually

api = stack_api  # this module's stack's client fixtures
bus = stack_bus

ORG = "org-e2e"  # agent_with_mailbox's
EXPIRES_SECONDS = 12.0  # long enough to approve a send at leisure, short enough to see one expire
QUIET_SECONDS = 3.0  # a second delivery, or a delivery of a rejected send, would have come by now


def short_expiry(processes: list[ServiceProcess]) -> list[ServiceProcess]:
    expiry = {"MAILBRIDGE_APPROVAL_EXPIRES_SECONDS": str(EXPIRES_SECONDS)}
    return [replace(p, env={**p.env, **expiry}) if p.name == "config-api" else p for p in processes]


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, mail_stack: MailStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    with own_system(
        postgres_dsn, tmp_path_factory.mktemp("approval"), "apprdb",
        ca_file=mail_stack.endpoints.ca_file, only={"config-api", "policy", "mail-worker"},
        arrange=short_expiry,
    ) as system:  # fmt: skip
        yield system


async def governed_agent(
    api: httpx.AsyncClient, mail_stack: MailStack, approval: str, own: str | None = None
) -> Agent:
    """An agent of a new client org (the mail stack's domain) whose ``approval`` is given;
    ``own``: the agent's own mode, overriding it."""
    agent = await agent_with_mailbox(api, mail_stack)
    client_org_id = new_id("client")
    body = {"name": "Acme", "email_domain": mail_stack.domain,
            "restrictions": {"approval": approval}}  # fmt: skip
    (await api.put(f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}", json=body)).raise_for_status()
    link = {"org_id": ORG, "client_org_id": client_org_id, "approval": own}
    (await api.put(f"/bridge/agents/{agent.agent_id}", json=link)).raise_for_status()
    return agent


async def send(api: httpx.AsyncClient, agent: Agent, to: str, subject: str) -> str:
    message = {"to": [to], "subject": subject, "text": f"{subject}: hello"}
    answer = await api.post(f"/bridge/agents/{agent.agent_id}/messages", json=message)
    answer.raise_for_status()
    command_id: str = answer.json()["command_id"]
    return command_id


def send_path(agent: Agent, command_id: str) -> str:
    return f"/bridge/agents/{agent.agent_id}/messages/{command_id}"


async def in_status(api: httpx.AsyncClient, path: str, status: str, **wait: Any) -> dict[str, Any]:
    async def there() -> dict[str, Any] | None:
        found: dict[str, Any] = (await api.get(path)).json()
        return found if found["status"] == status else None

    return await eventually(there, what=f"{path} {status}", **wait)


async def inbox_count(mail_stack: MailStack, address: str) -> int:
    return await asyncio.to_thread(mail_stack.count_messages, address, "INBOX")


async def contacts_learnt(bus: Client) -> None:
    """policy's consumer of sent events has taken and acknowledged every one published so far."""
    js = bus.jetstream()

    async def drained() -> bool:
        info = await js.consumer_info(MAIL_EVT.name, "policy-contacts-sent")
        return info.num_pending == 0 and info.num_ack_pending == 0

    await eventually(drained, what="policy learnt the contacts of every sent message")


async def send_steps(
    api: httpx.AsyncClient, agent: Agent, command_id: str, count: int
) -> list[dict[str, Any]] | None:
    """The agent's audit entries about one send, oldest first, once there are ``count``."""
    answer = await api.get(f"/bridge/agents/{agent.agent_id}/audit", params={"limit": 200})
    entries = [e for e in answer.json()["entries"] if e["details"].get("command_id") == command_id]
    return entries[::-1] if len(entries) >= count else None


async def test_a_first_contact_send_waits_goes_out_once_approved_and_the_contact_then_needs_none(
    api: httpx.AsyncClient, mail_stack: MailStack, bus: Client
) -> None:
    agent = await governed_agent(api, mail_stack, "first_contact")
    recipient, _ = await new_recipient(mail_stack)
    async with api.stream("GET", f"/bridge/agents/{agent.agent_id}/email-config/events") as feed:
        events = sse_events(feed)
        command_id = await send(api, agent, recipient, "first contact")
        await matching(events, {"send_held": lambda data: data["command_id"] == command_id})
        listed = (await api.get(f"/bridge/agents/{agent.agent_id}/messages?status=held")).json()
        assert [m["command_id"] for m in listed["messages"]] == [command_id]
        held = listed["messages"][0]["held"]
        assert (held["reason"], held["recipients"], held["to"]) == (
            "first_contact", [recipient], [recipient],
        )  # fmt: skip
        assert await inbox_count(mail_stack, recipient) == 0  # held: nothing went out

        path = send_path(agent, command_id)
        both = await asyncio.gather(api.post(f"{path}/approve"), api.post(f"{path}/approve"))
        assert [answer.status_code for answer in both] == [200, 200]
        decisions = [answer.json()["decision"] for answer in both]
        assert decisions[0] == decisions[1]  # one decision, answered to both
        assert decisions[0]["decision"] == "approved"
        assert decisions[0]["by"].startswith("api-key:")
        await matching(events, {"send_approved": lambda data: data["command_id"] == command_id})

    sent = await settled(api, path)
    assert sent["status"] == "sent"
    assert await delivered(mail_stack, recipient) == 1
    again = await api.post(f"{path}/approve")
    assert (again.status_code, again.json()["status"]) == (200, "sent")  # changes nothing
    await asyncio.sleep(QUIET_SECONDS)
    assert await inbox_count(mail_stack, recipient) == 1
    assert maillog.recipients(mail_stack.postfix_log, sent["message_id"]) == [recipient]

    steps = await eventually(
        lambda: send_steps(api, agent, command_id, count=4), what="the send's audit steps"
    )
    assert [(step["kind"], step["actor"]) for step in steps] == [
        ("send.requested", decisions[0]["by"]), ("send.held", "mail-worker"),
        ("send.approved", decisions[0]["by"]), ("send.sent", "mail-worker"),
    ]  # fmt: skip

    await contacts_learnt(bus)
    written_to_before = await send(api, agent, recipient.upper(), "second message")
    second = await settled(api, send_path(agent, written_to_before))
    assert (second["status"], second["held"]) == ("sent", None)
    assert await delivered(mail_stack, recipient, count=2) == 2


async def held_first_contact(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> tuple[str, str, dict[str, Any]]:
    """A first_contact agent's send to a new recipient, once held: the recipient, the send's
    path and the send as shown."""
    agent = await governed_agent(api, mail_stack, "first_contact")
    recipient, _ = await new_recipient(mail_stack)
    path = send_path(agent, await send(api, agent, recipient, "to a stranger"))
    return recipient, path, await in_status(api, path, "held")


async def test_a_rejected_send_is_never_delivered_and_cannot_be_approved_after(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    recipient, path, _ = await held_first_contact(api, mail_stack)

    rejected = await api.post(f"{path}/reject")
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["decision"]["decision"]) == (
        "rejected", "rejected",
    )  # fmt: skip
    assert (await api.post(f"{path}/reject")).json() == rejected.json()  # changes nothing
    late = await api.post(f"{path}/approve")
    assert (late.status_code, late.json()["code"]) == (409, "not_held")

    await asyncio.sleep(QUIET_SECONDS)
    assert await inbox_count(mail_stack, recipient) == 0
    assert not maillog.mentions(mail_stack.postfix_log, recipient)
    assert (await api.get(path)).json()["status"] == "rejected"


async def test_a_send_nobody_decides_expires_as_rejected_approval_expired(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    recipient, path, held = await held_first_contact(api, mail_stack)

    expired = await in_status(api, path, "rejected", timeout=EXPIRES_SECONDS * 4, every=0.5)

    assert expired["error"]["code"] == "approval_expired"
    assert (expired["decision"]["decision"], expired["decision"]["by"]) == ("expired", None)
    assert expired["decision"]["at"] >= held["held"]["expires_at"]
    late = await api.post(f"{path}/approve")
    assert (late.status_code, late.json()["code"]) == (409, "not_held")
    assert await inbox_count(mail_stack, recipient) == 0


async def test_outside_domain_holds_only_the_send_to_a_recipient_outside_the_client_orgs_domain(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await governed_agent(api, mail_stack, "outside_domain")
    colleague, _ = await new_recipient(mail_stack)  # in the client org's domain
    partner = f"someone@partner-{new_id()[:8].lower()}.example"

    inside = await send(api, agent, colleague, "to a colleague")
    outside = await send(api, agent, partner, "to a partner")

    assert (await settled(api, send_path(agent, inside)))["status"] == "sent"
    assert await delivered(mail_stack, colleague) == 1
    held = await in_status(api, send_path(agent, outside), "held")
    assert (held["held"]["reason"], held["held"]["recipients"]) == ("outside_domain", [partner])


async def test_an_agents_own_mode_overrides_its_client_orgs(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await governed_agent(api, mail_stack, "off", own="always")
    colleague, _ = await new_recipient(mail_stack)

    held = await in_status(api, send_path(agent, await send(api, agent, colleague, "x")), "held")

    assert held["held"]["reason"] == "always"
