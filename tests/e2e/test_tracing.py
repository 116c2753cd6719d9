"""One trace from the caller's HTTP request to the worker's result: operators follow a send across
config-api, NATS and the mail-worker by the trace id the caller sent (W3C ``traceparent``)."""

from __future__ import annotations

import asyncio
import secrets

import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg

from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.messages import MessageSent, SendMessage
from tests.e2e.mailboxes import agent_with_mailbox, new_recipient


async def test_a_send_carries_the_callers_trace_through_nats_and_the_worker(
    api: httpx.AsyncClient, mail_stack: MailStack, nc: Client
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    recipient, _ = await new_recipient(mail_stack)
    seen: dict[str, asyncio.Future[Msg]] = {
        SendMessage.subject_for(agent.agent_id): asyncio.get_running_loop().create_future(),
        MessageSent.subject_for(agent.agent_id): asyncio.get_running_loop().create_future(),
    }

    async def keep(msg: Msg) -> None:
        if not seen[msg.subject].done():
            seen[msg.subject].set_result(msg)

    for subject in seen:
        await nc.subscribe(subject, cb=keep)
    trace_id = secrets.token_hex(16)
    caller = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    body = {"to": [recipient], "subject": "traced", "text": "x"}
    answer = await api.post(f"/bridge/agents/{agent.agent_id}/messages", json=body, headers=caller)
    assert answer.status_code == 202, answer.text

    async with asyncio.timeout(30):
        command, sent = await asyncio.gather(*seen.values())
    for msg in (command, sent):
        assert msg.headers is not None and trace_id in msg.headers.get("traceparent", ""), (
            msg.subject,
            msg.headers,
        )
