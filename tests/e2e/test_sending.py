"""Sending and replying through the real pipeline: HTTP → outbox → NATS → mail-worker → Postfix →
Dovecot, with the copy in Sent and the outcome back on the HTTP ledger."""

from __future__ import annotations

from email import message_from_bytes
from email.message import Message

import aioimaplib
import httpx

from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.mailstack import MailStack
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import agent_with_mailbox, delivered, new_recipient, settled
from tests.e2e.metrics import counted, metrics_of

SENDS_ACKED = 'mailbridge_worker_commands_total{command="send",result="ack"}'


async def headers_of_first(mail_stack: MailStack, address: str, password: str) -> Message:
    mail = mail_stack.endpoints
    client = aioimaplib.IMAP4_SSL(
        mail.host, mail.imap_port, ssl_context=client_ssl_context(mail.ca_file)
    )
    await client.wait_hello_from_server()
    await client.login(address, password)
    await client.select("INBOX")
    fetched = await client.fetch("1", "(BODY.PEEK[HEADER])")
    await client.logout()
    raw = next(
        line
        for line in fetched.lines
        if isinstance(line, (bytes, bytearray)) and b"Message-ID" in line
    )
    return message_from_bytes(bytes(raw))


async def test_a_sent_message_arrives_once_with_a_copy_in_sent(
    api: httpx.AsyncClient, mail_stack: MailStack, system: RunningSystem
) -> None:
    sends_acked = counted(await metrics_of(system, "mail-worker"), SENDS_ACKED)
    agent = await agent_with_mailbox(api, mail_stack)
    recipient, _ = await new_recipient(mail_stack)
    path = f"/bridge/agents/{agent.agent_id}/messages"

    queued = await api.post(
        path, json={"to": [recipient], "subject": "Hello", "text": "Hi", "html": "<b>Hi</b>"}
    )

    outcome = await settled(api, f"{path}/{queued.json()['command_id']}")
    assert outcome["status"] == "sent", outcome
    assert await delivered(mail_stack, recipient) == 1
    assert await delivered(mail_stack, agent.address, "Sent") == 1
    assert counted(await metrics_of(system, "mail-worker"), SENDS_ACKED) == sends_acked + 1


async def test_a_reply_is_threaded(api: httpx.AsyncClient, mail_stack: MailStack) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    recipient, password = await new_recipient(mail_stack)
    path = f"/bridge/agents/{agent.agent_id}/messages"
    body = {
        "to": [recipient],
        "subject": "Your order",
        "text": "Shipped.",
        "in_reply_to": "<order-1@example.com>",
    }

    queued = await api.post(path, json=body)

    outcome = await settled(api, f"{path}/{queued.json()['command_id']}")
    await delivered(mail_stack, recipient)
    headers = await headers_of_first(mail_stack, recipient, password)
    assert headers["Subject"] == "Re: Your order"
    assert headers["In-Reply-To"] == "<order-1@example.com>"
    assert "<order-1@example.com>" in headers["References"]
    assert headers["Message-ID"] == outcome["message_id"]
    assert headers["From"] == agent.address


async def test_a_refused_login_fails_the_send_and_turns_the_badge(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack, saved_password="wrong")
    recipient, _ = await new_recipient(mail_stack)
    path = f"/bridge/agents/{agent.agent_id}/messages"

    queued = await api.post(path, json={"to": [recipient], "text": "Hi"})

    outcome = await settled(api, f"{path}/{queued.json()['command_id']}")
    assert (outcome["status"], outcome["error"]["code"]) == ("failed", "auth_failed")
    shown = (await api.get(f"/bridge/agents/{agent.agent_id}/email-config")).json()
    assert (shown["status"], shown["last_error"]["source"]) == ("error", "send")
