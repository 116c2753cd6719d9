"""Agents with real mailboxes in the local mail stack, for end-to-end tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import httpx
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import Message, MessageReceived
from mailbridge.shared.streams import MAIL_EVT
from tests.support.proxy import Proxy
from tests.support.waiting import eventually


def imap_config(mail: MailStackEndpoints, address: str, password: str) -> dict[str, Any]:
    return {
        "provider": "imap",
        "email": address,
        "imap": {"host": mail.host, "port": mail.imap_port, "security": "ssl"},
        "smtp": {"host": mail.host, "port": mail.smtp_starttls_port, "security": "starttls"},
        "password": password,
    }


@dataclass(frozen=True)
class Agent:
    agent_id: str
    address: str
    password: str


async def agent_with_mailbox(
    api: httpx.AsyncClient,
    mail_stack: MailStack,
    *,
    saved_password: str | None = None,
    seen_flags: tuple[bool, ...] = (),
) -> Agent:
    """A new agent whose mailbox exists in Dovecot, seeded, with its config saved."""
    agent_id = new_id("agent")
    password = "app-" + new_id()
    address = await asyncio.to_thread(
        mail_stack.create_mailbox, agent_id.replace("_", "-"), password
    )
    for number, seen in enumerate(seen_flags, start=1):
        await asyncio.to_thread(
            mail_stack.seed_message, address, subject=f"message {number}", body="hi", seen=seen
        )
    (await api.put(f"/bridge/agents/{agent_id}", json={"org_id": "org-e2e"})).raise_for_status()
    config = imap_config(mail_stack.endpoints, address, saved_password or password)
    saved = await api.put(f"/bridge/agents/{agent_id}/email-config", json=config)
    saved.raise_for_status()
    assert saved.json()["status"] == "configured"
    return Agent(agent_id, address, password)


async def sender_through(
    api: httpx.AsyncClient, mail_stack: MailStack, smtp_port: int, *, org_id: str,
    client_org_id: str | None = None,
) -> Agent:  # fmt: skip
    """An agent of ``org_id`` (and ``client_org_id``) whose mailbox submits through
    ``smtp_port`` (a proxy in front of Postfix, such as ``throttled_submission``'s)."""
    agent_id, password = new_id("agent"), "app-" + new_id()
    address = await asyncio.to_thread(
        mail_stack.create_mailbox, agent_id.replace("_", "-"), password
    )
    agent = {"org_id": org_id, "client_org_id": client_org_id}
    (await api.put(f"/bridge/agents/{agent_id}", json=agent)).raise_for_status()
    config = imap_config(mail_stack.endpoints, address, password)
    config["smtp"]["port"] = smtp_port
    (await api.put(f"/bridge/agents/{agent_id}/email-config", json=config)).raise_for_status()
    return Agent(agent_id, address, password)


@asynccontextmanager
async def throttled_submission(
    mail_stack: MailStack, bytes_per_second: float
) -> AsyncIterator[int]:
    """The port of a proxy to Postfix's submission port that lets what a client says through
    at ``bytes_per_second``: a STARTTLS session and a small message then take seconds, so a
    burst of sends is still in flight when a test acts on the system."""
    proxy = Proxy(mail_stack.endpoints.host, mail_stack.endpoints.smtp_starttls_port)
    port = await proxy.start()
    proxy.throttle = bytes_per_second
    try:
        yield port
    finally:
        await proxy.stop()


async def shown_config(api: httpx.AsyncClient, agent: Agent) -> dict[str, Any]:
    answer = await api.get(f"/bridge/agents/{agent.agent_id}/email-config")
    answer.raise_for_status()
    shown: dict[str, Any] = answer.json()
    return shown


async def run_test(api: httpx.AsyncClient, agent: Agent) -> httpx.Response:
    return await api.post(f"/bridge/agents/{agent.agent_id}/email-config/test")


async def new_recipient(mail_stack: MailStack) -> tuple[str, str]:
    password = new_id()
    address = await asyncio.to_thread(mail_stack.create_mailbox, "to-" + new_id()[:12], password)
    return address, password


async def mail_through_postfix(mail_stack: MailStack, to: str, subject: str) -> float:
    """Mail to ``to`` as it comes from outside: submitted to Postfix (a sender's login, TLS),
    queued, delivered to Dovecot over LMTP. Answers when Postfix accepted it (monotonic)."""
    sender, password = await new_recipient(mail_stack)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message.set_content(f"{subject}, through Postfix")
    endpoints = mail_stack.endpoints
    await aiosmtplib.send(
        message, hostname=endpoints.host, port=endpoints.smtp_tls_port, use_tls=True,
        tls_context=client_ssl_context(endpoints.ca_file), username=sender, password=password,
    )  # fmt: skip
    return time.monotonic()


async def delivered(
    mail_stack: MailStack, address: str, folder: str = "INBOX", count: int = 1
) -> int:
    """Wait for ``count`` (at least one) messages in the folder (delivery through LMTP is
    asynchronous); answers how many it holds then."""

    async def enough() -> int | None:
        found = await asyncio.to_thread(mail_stack.count_messages, address, folder)
        return found if found >= count else None

    return await eventually(enough, what=f"{count} message(s) in {folder} of {address}")


async def settled(api: httpx.AsyncClient, path: str) -> dict[str, Any]:
    """Wait until the send at ``path`` is no longer ``queued``; answers it then."""

    async def not_queued() -> dict[str, Any] | None:
        found: dict[str, Any] = (await api.get(path)).json()
        return None if found["status"] == "queued" else found

    return await eventually(not_queued, what=f"{path} settled (no longer queued)")


async def publish(js: JetStreamContext, message: Message) -> None:
    """As a service publishes: to its stream, with ``Nats-Msg-Id`` for JetStream's dedupe."""
    headers = {"Nats-Msg-Id": message.dedupe_id()}
    await js.publish(message.nats_subject(), message.model_dump_json().encode(), headers=headers)


class Inbox:
    """Every ``message.received`` event of one agent, in arrival order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.arrived_at: list[float] = []  # time.monotonic() of each event's arrival
        self._arrived = asyncio.Event()

    async def deliver(self, msg: Msg) -> None:
        self.events.append(json.loads(msg.data))
        self.arrived_at.append(time.monotonic())
        self._arrived.set()

    async def until(self, count: int) -> list[dict[str, Any]]:
        """Once ``count`` events are in; looked at again as each one arrives."""

        async def enough() -> list[dict[str, Any]] | None:
            return self.events if len(self.events) >= count else None

        what = f"{count} message.received events"
        return await eventually(enough, what=what, every=1.0, wake=self._arrived)

    async def subscribe(self, js: JetStreamContext, agent_id: str) -> None:
        """Every ``message.received`` event of ``agent_id`` from the start of the stream."""
        await js.subscribe(
            MessageReceived.subject_for(agent_id), stream=MAIL_EVT.name, cb=self.deliver,
            ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )  # fmt: skip
