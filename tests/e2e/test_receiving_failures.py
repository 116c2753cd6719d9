"""Receiving when the password stops working: the watching session is cut and its new login refused
by the real Dovecot; that turns the badge to ``error`` with the auth hint, the watch ends and
polling stops (no more bad logins); the right password saved makes it ``connected`` again, watched
again, and new mail arrives."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from mailbridge.devstack.mailstack import MailStack
from mailbridge.shared.messages import PollMailbox
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import (
    Agent,
    Inbox,
    agent_with_mailbox,
    imap_config,
    run_test,
    shown_config,
)
from tests.e2e.metrics import counted, metrics_of
from tests.e2e.watches import watcher_of
from tests.support.waiting import eventually

AUTH_FAILURES = 'mailbridge_poll_backoff_failures_total{kind="auth"}'
WATCHES_FAILED = 'mailbridge_watch_ended_total{reason="failed"}'


class Polls:
    """The poll commands the scheduler publishes for one agent, seen on core NATS (the work-queue
    stream allows no second consumer)."""

    def __init__(self) -> None:
        self.count = 0
        self._arrived = asyncio.Event()

    async def deliver(self, msg: Msg) -> None:
        self.count += 1
        self._arrived.set()

    async def watch(self, nc: Client, agent: Agent) -> Polls:
        await nc.subscribe(PollMailbox.subject_for(agent.agent_id), cb=self.deliver)
        return self

    async def until(self, count: int) -> int:
        async def enough() -> int | None:
            return self.count if self.count >= count else None

        return await eventually(enough, what=f"{count} poll commands", wake=self._arrived)


async def connected(api: httpx.AsyncClient, mail_stack: MailStack) -> Agent:
    agent = await agent_with_mailbox(api, mail_stack)
    assert (await run_test(api, agent)).json()["ok"]
    return agent


async def status_of(api: httpx.AsyncClient, agent: Agent, wanted: str) -> dict[str, Any]:
    async def shown() -> dict[str, Any] | None:
        config = await shown_config(api, agent)
        return config if config["status"] == wanted else None

    return await eventually(shown, what=f"{agent.agent_id} {wanted}")


async def test_a_password_changed_at_the_server_stops_polling_until_the_right_one_is_saved(
    api: httpx.AsyncClient,
    nc: Client,
    js: JetStreamContext,
    mail_stack: MailStack,
    system: RunningSystem,
) -> None:
    agent, witness = await connected(api, mail_stack), await connected(api, mail_stack)
    polls, witness_polls = await Polls().watch(nc, agent), await Polls().watch(nc, witness)
    inbox = Inbox()
    await inbox.subscribe(js, agent.agent_id)
    await polls.until(1)  # receiving works before the change
    await watcher_of(nc, agent)

    before = await metrics_of(system, "mail-worker")
    auth_failures, watches_failed = counted(before, AUTH_FAILURES), counted(before, WATCHES_FAILED)
    new_password = agent.password + "-new"
    await asyncio.to_thread(mail_stack.change_password, agent.address, new_password)

    broken = await status_of(api, agent, "error")
    error = broken["last_error"]
    assert (error["code"], error["source"]) == ("auth_failed", "poll")
    assert error["hint"].startswith("Regenerate the app password")
    after = await metrics_of(system, "mail-worker")
    assert counted(after, AUTH_FAILURES) >= auth_failures + 1
    assert counted(after, WATCHES_FAILED) == watches_failed + 1  # the watch ended, reported once
    # Polling stopped: over the witness's next two slots, not one more poll for the agent.
    stopped_at = polls.count
    await witness_polls.until(witness_polls.count + 1)
    polled_then = polls.count
    await witness_polls.until(witness_polls.count + 2)
    assert polls.count == polled_then <= stopped_at + 1  # one may have been on its way

    config = imap_config(mail_stack.endpoints, agent.address, new_password)
    saved = await api.put(f"/bridge/agents/{agent.agent_id}/email-config", json=config)
    saved.raise_for_status()
    assert (await status_of(api, agent, "connected"))["last_error"] is None  # tested at once
    await watcher_of(nc, agent)

    await asyncio.to_thread(
        mail_stack.seed_message, agent.address, subject="After the fix", body="hello"
    )
    arrived = await inbox.until(1)
    assert [e["subject"] for e in arrived] == ["After the fix"]
