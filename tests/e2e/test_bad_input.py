"""Bad input through the real pipeline: an injecting subject is refused at the API and, published
on NATS directly, fails for good with nothing reaching Postfix; a large send is delivered intact
(its content out of band) without holding up a small one behind it; an oversized one is a 413."""

from __future__ import annotations

import asyncio
import base64
import email.policy
import hashlib
import os
import time
from email import message_from_bytes

import aioimaplib
import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import ObjectNotFoundError

from mailbridge.devstack import maillog
from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared import content
from mailbridge.shared.messages import MessageSendFailed, SendMessage
from tests.e2e.mailboxes import (
    Agent,
    agent_with_mailbox,
    delivered,
    new_recipient,
    publish,
    settled,
)
from tests.support.waiting import eventually

INJECTING_SUBJECT = "=?utf-8?B?SGVsbG8NCkJjYzogZXZpbEBldmlsLmV4YW1wbGU=?="  # Hello\r\nBcc: evil@…
NINE_MB = 9 * 1000 * 1000


async def test_an_encoded_word_that_injects_a_header_is_refused_at_the_api(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    body = {"to": ["ada@example.com"], "subject": INJECTING_SUBJECT, "text": "hi"}
    answer = await api.post(f"/bridge/agents/{agent.agent_id}/messages", json=body)
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_input"
    assert answer.json()["errors"][0]["loc"] == ["body", "subject"]


async def test_published_on_nats_it_fails_for_good_and_postfix_never_sees_it(
    api: httpx.AsyncClient, mail_stack: MailStack, nc: Client
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    recipient, _ = await new_recipient(mail_stack)
    command = SendMessage(
        agent_id=agent.agent_id, to=[recipient], subject=INJECTING_SUBJECT, text="hi"
    )
    failure = await _failure_of(nc, agent, command)
    assert (failure.outcome, failure.error.code) == ("failed", "invalid_input")
    message_id = f"<{command.command_id}@{mail_stack.domain}>"
    assert not maillog.queue_ids(mail_stack.postfix_log, message_id)
    assert not maillog.mentions(mail_stack.postfix_log, "evil@evil.example")


async def _failure_of(nc: Client, agent: Agent, command: SendMessage) -> MessageSendFailed:
    arrived: asyncio.Future[MessageSendFailed] = asyncio.get_running_loop().create_future()

    async def on_failure(msg: Msg) -> None:
        event = MessageSendFailed.model_validate_json(msg.data)
        if event.command_id == command.command_id and not arrived.done():
            arrived.set_result(event)

    subscription = await nc.subscribe(MessageSendFailed.subject_for(agent.agent_id), cb=on_failure)
    try:
        await publish(nc.jetstream(), command)
        async with asyncio.timeout(30):
            return await arrived
    finally:
        await subscription.unsubscribe()


async def test_a_nine_megabyte_send_arrives_intact_and_holds_up_no_one(
    api: httpx.AsyncClient, mail_stack: MailStack, nc: Client
) -> None:
    large_sender, small_sender = await asyncio.gather(
        agent_with_mailbox(api, mail_stack), agent_with_mailbox(api, mail_stack)
    )
    (large_to, large_password), (small_to, _) = await asyncio.gather(
        new_recipient(mail_stack), new_recipient(mail_stack)
    )
    payload = os.urandom(NINE_MB)
    attachment = {"filename": "report.bin", "content_base64": base64.b64encode(payload).decode()}
    large = {
        "to": [large_to],
        "subject": "Large",
        "text": "see attached",
        "attachments": [attachment],
    }

    queued_large = await api.post(f"/bridge/agents/{large_sender.agent_id}/messages", json=large)
    assert queued_large.status_code == 202, queued_large.text
    small_queued_at = time.monotonic()
    queued_small = await api.post(
        f"/bridge/agents/{small_sender.agent_id}/messages",
        json={"to": [small_to], "subject": "Small", "text": "hi"},
    )
    small = await settled(api, _send_path(small_sender, queued_small.json()["command_id"]))
    assert small["status"] == "sent", small
    assert await delivered(mail_stack, small_to) == 1
    assert time.monotonic() - small_queued_at < 15  # not behind the large one for long

    outcome = await settled(api, _send_path(large_sender, queued_large.json()["command_id"]))
    assert outcome["status"] == "sent", outcome
    assert await delivered(mail_stack, large_to) == 1
    received = await _attachment_of_first(mail_stack, large_to, large_password)
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    await _deleted_from_the_content_bucket(nc, queued_large.json()["command_id"])


async def _deleted_from_the_content_bucket(nc: Client, name: str) -> None:
    """The worker deletes a settled send's content right after publishing its outcome."""
    store = await nc.jetstream().object_store(content.BUCKET)

    async def gone() -> bool:
        try:
            await store.get_info(name)
        except ObjectNotFoundError:
            return True
        return False

    await eventually(gone, what=f"{name} deleted from {content.BUCKET}", timeout=10)


async def test_a_send_over_the_stated_limit_is_a_413_and_nothing_is_queued(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    over = base64.b64encode(b"\0" * (10 * 1024 * 1024 + 1)).decode()
    body = {"to": ["ada@example.com"], "text": "x",
            "attachments": [{"filename": "a.bin", "content_base64": over}]}  # fmt: skip
    answer = await api.post(f"/bridge/agents/{agent.agent_id}/messages", json=body)
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "message_too_large"


def _send_path(agent: Agent, command_id: str) -> str:
    return f"/bridge/agents/{agent.agent_id}/messages/{command_id}"


async def _attachment_of_first(mail_stack: MailStack, address: str, password: str) -> bytes:
    mail = mail_stack.endpoints
    client = aioimaplib.IMAP4_SSL(
        mail.host, mail.imap_port, ssl_context=client_ssl_context(mail.ca_file), timeout=60
    )
    await client.wait_hello_from_server()
    await client.login(address, password)
    await client.select("INBOX")
    fetched = await client.fetch("1", "(BODY.PEEK[])")
    await client.logout()
    raw = max((line for line in fetched.lines if isinstance(line, bytes | bytearray)), key=len)
    message = message_from_bytes(bytes(raw), policy=email.policy.default)
    [attachment] = list(message.iter_attachments())  # type: ignore[attr-defined]
    content: bytes = attachment.get_content()
    return content
