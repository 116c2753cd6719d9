"""Receiving: a connected mailbox is polled on schedule and each new message becomes exactly one
``message.received`` event, parsed, with no backlog flood and no duplicates."""

from __future__ import annotations

import asyncio

import httpx
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.messages import MessageReceived
from mailbridge.shared.streams import MAIL_EVT
from tests.e2e.mailboxes import Inbox, agent_with_mailbox, run_test


async def test_new_mail_arrives_once_each_parsed_and_without_a_backlog_flood(
    api: httpx.AsyncClient, js: JetStreamContext, mail_stack: MailStack
) -> None:
    old = (True,) * 12  # more than the first-poll backlog of 10
    agent = await agent_with_mailbox(api, mail_stack, seen_flags=old)
    inbox = Inbox()
    await js.subscribe(
        MessageReceived.subject_for(agent.agent_id), stream=MAIL_EVT.name, cb=inbox.deliver,
        ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )  # fmt: skip
    assert (await run_test(api, agent)).json()["ok"]  # connected: the scheduler starts polling

    backlog = await inbox.until(10)
    await asyncio.to_thread(
        mail_stack.seed_message,
        agent.address,
        subject="Fresh",
        body="New mail",
        sender="ada@example.com",
    )
    fresh = (await inbox.until(11))[10]
    await asyncio.to_thread(mail_stack.seed_message, agent.address, subject="Later", body="Again")
    events = await inbox.until(12)

    assert [e["subject"] for e in backlog[:10]] == [f"message {n}" for n in range(3, 13)]
    assert (fresh["subject"], fresh["from"], fresh["text"].strip()) == (
        "Fresh",
        "ada@example.com",
        "New mail",
    )
    assert fresh["to"] == [agent.address]
    assert len({(e["uidvalidity"], e["uid"]) for e in events}) == len(events) == 12  # no duplicates
