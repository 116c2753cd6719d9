"""first_contact through the running services: a stranger's message says so; once the agent has
written to someone, that person's next message does not (policy keeps the history from the sent
events; the mail-worker asks it once per read)."""

from __future__ import annotations

import asyncio
import email.utils

import httpx
from nats.aio.client import Client
from nats.js import JetStreamContext

from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.messages import KnownContacts, KnownContactsReply
from tests.e2e.mailboxes import Agent, Inbox, agent_with_mailbox, new_recipient, run_test, settled
from tests.support.waiting import eventually


def _from(agent: Agent, sender: str, subject: str) -> bytes:
    headers = [f"From: {sender}", f"To: {agent.address}", f"Subject: {subject}",
               f"Date: {email.utils.formatdate()}"]  # fmt: skip
    return ("\r\n".join(headers) + "\r\n\r\nhello\r\n").encode()


async def _known_to_policy(nc: Client, agent: Agent, address: str) -> None:
    """Policy records a contact from the sent event, after it: wait until it says so."""

    async def known() -> bool | None:
        ask = KnownContacts(agent_id=agent.agent_id, addresses=[address])
        reply = await nc.request(ask.nats_subject(), ask.model_dump_json().encode(), timeout=2)
        return True if KnownContactsReply.model_validate_json(reply.data).known else None

    await eventually(known, what=f"policy knows {address} as {agent.agent_id}'s contact")


async def test_a_stranger_is_a_first_contact_and_someone_written_to_is_not(
    api: httpx.AsyncClient, js: JetStreamContext, nc: Client, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    inbox = Inbox()
    await inbox.subscribe(js, agent.agent_id)
    assert (await run_test(api, agent)).json()["ok"]
    friend, _ = await new_recipient(mail_stack)
    sent = await api.post(
        f"/bridge/agents/{agent.agent_id}/messages",
        json={"to": [friend], "subject": "Hello", "text": "Shall we talk?"},
    )
    assert sent.status_code == 202, sent.text
    path = f"/bridge/agents/{agent.agent_id}/messages/{sent.json()['command_id']}"
    assert (await settled(api, path))["status"] == "sent"
    await _known_to_policy(nc, agent, friend)

    stranger = "Eve <eve@strangers.example>"
    await asyncio.to_thread(mail_stack.seed_raw, agent.address, _from(agent, stranger, "cold"))
    await asyncio.to_thread(mail_stack.seed_raw, agent.address, _from(agent, friend, "reply"))
    events = {e["subject"]: e for e in await inbox.until(2)}

    assert events["cold"]["screening"]["first_contact"] is True
    assert events["reply"]["screening"]["first_contact"] is False
