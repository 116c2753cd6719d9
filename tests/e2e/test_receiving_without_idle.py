"""A server that does not offer IDLE: the mailbox is marked as one that cannot push, no worker
claims it again, and polls read its mail, each message once.

Its own Dovecot (without IDLE) and a stack of its own that polls every second."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.system import RunningSystem
from tests.e2e.databases import own_system, stack_api, stack_bus
from tests.e2e.mailboxes import Inbox, agent_with_mailbox, run_test
from tests.e2e.metrics import counted, metrics_of
from tests.e2e.watches import watch_entry
from tests.e2e.workers import SERVICE
from tests.support.own_mail_stack import own_mail_stack
from tests.support.waiting import eventually

api, bus = stack_api, stack_bus  # this module's stack's client fixtures

NO_PUSH = 'mailbridge_watch_ended_total{reason="no_push"}'


@pytest.fixture(scope="module")
def no_idle_mail() -> Iterator[MailStack]:
    with own_mail_stack("no-idle", imap_idle=False) as stack:
        yield stack


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, no_idle_mail: MailStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningSystem]:
    with own_system(
        postgres_dsn, tmp_path_factory.mktemp("no-idle"), "noidledb",
        ca_file=no_idle_mail.endpoints.ca_file, poll_interval=1.0,
    ) as system:  # fmt: skip
        yield system


async def test_a_server_without_idle_is_read_by_polls(
    api: httpx.AsyncClient, bus: Client, no_idle_mail: MailStack, stack: RunningSystem
) -> None:
    agent = await agent_with_mailbox(api, no_idle_mail)
    inbox = Inbox()
    await inbox.subscribe(bus.jetstream(), agent.agent_id)
    assert (await run_test(api, agent)).json()["ok"]

    async def marked() -> bool:
        entry = await watch_entry(bus, agent)
        return entry is not None and entry["push"] is False

    await eventually(marked, what="the mailbox marked as one that cannot push")
    for number in range(3):
        await asyncio.to_thread(
            no_idle_mail.seed_message, agent.address, subject=f"p{number}", body="x"
        )
        await inbox.until(number + 1)

    assert [e["subject"] for e in inbox.events] == ["p0", "p1", "p2"]
    assert counted(await metrics_of(stack, SERVICE), NO_PUSH) == 1  # found out once, not per poll
    assert (await watch_entry(bus, agent) or {}).get("owner") == ""
