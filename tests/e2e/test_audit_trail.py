"""The audit trail as an operator reads it: every step of an agent's mailbox, in order, through the
running services and the real mail stack (Dovecot, Postfix), and nothing of another org's agent
or of any message body."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.ids import new_id
from tests.e2e.conftest import RunningSystem
from tests.e2e.databases import org_client
from tests.e2e.mailboxes import Agent, agent_with_mailbox, new_recipient, run_test, settled
from tests.support.waiting import eventually

ORG = "org-e2e"
SENT_BODY = f"sent body {new_id()}"
RECEIVED_BODY = f"received body {new_id()}"
STEPS = [
    ("config.saved", "api-key"),
    ("connection.tested", "mail-worker"),
    ("send.requested", "api-key"),
    ("send.sent", "mail-worker"),
    ("send.requested", "api-key"),
    ("send.blocked", "mail-worker"),
    ("mail.received", "mail-worker"),
]


async def send(api: httpx.AsyncClient, agent: Agent, to: str, subject: str) -> dict[str, Any]:
    path = f"/bridge/agents/{agent.agent_id}/messages"
    message = {"to": [to], "subject": subject, "text": SENT_BODY, "html": f"<p>{SENT_BODY}</p>"}
    queued = (await api.post(path, json=message)).json()
    return await settled(api, f"{path}/{queued['command_id']}")


async def restrict_to_own_domain(api: httpx.AsyncClient, agent: Agent, domain: str) -> None:
    client_org_id = new_id("client")
    rules = {"name": "Acme", "email_domain": domain,
             "restrictions": {"allowed_recipients": [domain]}}  # fmt: skip
    (
        await api.put(f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}", json=rules)
    ).raise_for_status()
    link = {"org_id": ORG, "client_org_id": client_org_id}
    (await api.put(f"/bridge/agents/{agent.agent_id}", json=link)).raise_for_status()


async def whole_trail(api: httpx.AsyncClient, agent_id: str) -> list[dict[str, Any]]:
    """Every entry, page by page (small pages: the cursor is followed), oldest first."""
    entries: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        answer = await api.get(f"/bridge/agents/{agent_id}/audit", params=params)
        answer.raise_for_status()
        page = answer.json()
        entries += page["entries"]
        if page["next_cursor"] is None:
            return entries[::-1]
        params["cursor"] = page["next_cursor"]


async def test_the_trail_lists_every_step_in_order_and_no_body_nor_another_orgs_agent(
    api: httpx.AsyncClient, mail_stack: MailStack, system: RunningSystem
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    await restrict_to_own_domain(api, agent, mail_stack.domain)
    assert (await run_test(api, agent)).json()["ok"] is True
    recipient, _ = await new_recipient(mail_stack)
    delivered = await send(api, agent, recipient, "Invoice")
    blocked = await send(api, agent, f"stranger-{new_id()[:8]}@elsewhere.example", "Hello")
    assert (delivered["status"], blocked["status"]) == ("sent", "blocked")
    await asyncio.to_thread(
        mail_stack.seed_message, agent.address, subject="A question", body=RECEIVED_BODY,
        sender="ada@example.com",
    )  # fmt: skip

    async def every_step() -> list[dict[str, Any]] | None:
        entries = await whole_trail(api, agent.agent_id)
        return entries if len(entries) >= len(STEPS) else None

    entries = await eventually(every_step, what="the whole trail", timeout=60)

    assert [(e["kind"], e["actor"].split(":")[0]) for e in entries] == STEPS
    sent, refused, received = entries[3], entries[5], entries[6]
    assert sent["details"]["command_id"] == delivered["command_id"]
    assert sent["details"]["verdict"] == "allowed"
    assert (refused["details"]["verdict"], refused["details"]["code"]) == (
        "blocked", "recipient_not_allowed",
    )  # fmt: skip
    assert (received["details"]["sender"], received["details"]["subject"]) == (
        "ada@example.com", "A question",
    )  # fmt: skip
    shown = json.dumps(entries)
    for never in (SENT_BODY, RECEIVED_BODY, agent.password):
        assert never not in shown

    other_org = f"org-{new_id()[:10]}"
    async with org_client(system, other_org) as other:
        refused_answer = await other.get(f"/bridge/agents/{agent.agent_id}/audit")
        assert refused_answer.status_code == 404
        theirs = new_id("agent")
        (await other.put(f"/bridge/agents/{theirs}", json={"org_id": other_org})).raise_for_status()
        assert (await other.get(f"/bridge/agents/{theirs}/audit")).json()["entries"] == []
