"""Inbound screening through the real mail stack: Dovecot holds messages with the headers a
sender and a receiving server would write, and each ``message.received`` event says what of them
the worker believed. The devstack trusts the stack's own receiving server
(``MAILBRIDGE_TRUSTED_AUTHSERV_ID`` = its Postfix's host name), and nobody else."""

from __future__ import annotations

import asyncio
import email.utils
from typing import Any

import httpx
from nats.js import JetStreamContext

from mailbridge.devstack.mailstack import MailStack
from tests.e2e.mailboxes import Agent, Inbox, agent_with_mailbox, run_test

UNKNOWN_ALL = {"spf": "unknown", "dkim": "unknown", "dmarc": "unknown"}


def _raw(agent: Agent, subject: str, sender: str, *authentication_results: str) -> bytes:
    headers = [f"Authentication-Results: {value}" for value in authentication_results]
    headers += [
        f"From: {sender}",
        f"To: {agent.address}",
        f"Subject: {subject}",
        f"Date: {email.utils.formatdate()}",
        f"Message-ID: {email.utils.make_msgid(domain='sender.example')}",
    ]
    return ("\r\n".join(headers) + "\r\n\r\nPlease act on this.\r\n").encode()


async def _screened(
    api: httpx.AsyncClient, js: JetStreamContext, mail_stack: MailStack, agent: Agent,
    messages: list[bytes],
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each seeded message's event's ``screening``, by subject, once the mailbox is connected."""
    for raw in messages:
        await asyncio.to_thread(mail_stack.seed_raw, agent.address, raw)
    inbox = Inbox()
    await inbox.subscribe(js, agent.agent_id)
    assert (await run_test(api, agent)).json()["ok"]  # connected: read from now on
    events = await inbox.until(len(messages))
    return {event["subject"]: event["screening"] for event in events}


async def test_only_the_receiving_servers_authentication_results_are_believed(
    api: httpx.AsyncClient, js: JetStreamContext, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    ours = mail_stack.endpoints.authserv_id
    forged_pass = "spf=pass smtp.mailfrom=bank.example; dkim=pass header.d=bank.example; dmarc=pass"
    screened = await _screened(api, js, mail_stack, agent, [
        _raw(agent, "forged", "Bank <alerts@bank.example>", f"mx.stranger.example; {forged_pass}"),
        _raw(
            agent, "trusted", "Bank <alerts@bank.example>",
            f"{ours}; spf=fail smtp.mailfrom=bank.example; dkim=none; dmarc=fail"
            " header.from=bank.example",
            f"{ours}; {forged_pass}",  # below ours: it came with the message, whatever its id
        ),
    ])  # fmt: skip

    stranger = {"lookalike_sender": None, "first_contact": True}  # the bank never wrote before
    assert screened["forged"] == {"authserv_id": None, **UNKNOWN_ALL, **stranger}
    assert screened["trusted"] == {
        "authserv_id": ours,
        "spf": "fail",
        "dkim": "none",
        "dmarc": "fail",
        **stranger,
    }


async def test_a_sender_imitating_the_agents_domain_is_flagged(
    api: httpx.AsyncClient, js: JetStreamContext, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    own = agent.address.rpartition("@")[2]  # mailbridge.example
    typo = own.replace("i", "1", 1)  # ma1lbridge.example
    screened = await _screened(api, js, mail_stack, agent, [
        _raw(agent, "typo", f"IT desk <it@{typo}>"),
        _raw(agent, "display", f'"it@{own}" <it@helpdesk.example>'),
        _raw(agent, "colleague", f"Colleague <colleague@{own}>"),
    ])  # fmt: skip

    assert screened["typo"]["lookalike_sender"]["reason"] == "edit_distance"
    assert screened["typo"]["lookalike_sender"]["sender_domain"] == typo
    assert screened["display"]["lookalike_sender"]["reason"] == "display_name"
    assert screened["colleague"]["lookalike_sender"] is None
    assert {screened["typo"][k] for k in UNKNOWN_ALL} == {"unknown"}  # no header: not checked
