"""Client-organization restrictions hold at send time: through real mail-workers and the real MTA,
only allowed recipients ever reach ``RCPT TO``, and a limit holds across several workers at once.

Send commands are published on NATS as any service may publish them (so values the HTTP API would
already refuse, like a list inside one ``to`` entry, reach the worker); Postfix's own log is the
account of who was written to (see ``mailbridge.devstack.maillog``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from mailbridge.devstack import maillog
from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.supervisor import Supervisor
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import AgentUpdated, MessageSendFailed, MessageSent, SendMessage
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import (
    Agent,
    agent_with_mailbox,
    delivered,
    imap_config,
    new_recipient,
    publish,
    settled,
)
from tests.e2e.metrics import counted, metrics_of
from tests.e2e.workers import worker_replicas
from tests.support.waiting import eventually

ORG = "org-e2e"
RULES = ["allowed.example", "bücher.example", "boss@partner.example"]
EVIL = f"evil-{new_id()[:10]}@x.io"  # unique per run, so the MTA log can be searched for it
IDN_ASCII = "xn--bcher-kva.example"
REFUSALS = 'mailbridge_policy_send_decisions_total{decision="recipient_not_allowed"}'
RELEASED = "mailbridge_policy_reservations_released_total"


@dataclass(frozen=True)
class Row:
    name: str
    to: list[str]
    envelope: list[str] | None  # what must reach RCPT TO; None: blocked, nothing may
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)


TABLE = [
    Row("uppercase", ["ALICE@ALLOWED.EXAMPLE"], ["alice@allowed.example"]),
    Row("trailing dot", ["alice@allowed.example."], ["alice@allowed.example"]),
    Row("unicode domain", ["leser@BÜCHER.example"], [f"leser@{IDN_ASCII}"]),
    Row("punycode domain", [f"leser@{IDN_ASCII}"], [f"leser@{IDN_ASCII}"]),
    Row("display name", ["The Boss <Boss@Partner.Example>"], ["boss@partner.example"]),
    Row("quoted local part", ['"boss"@partner.example'], ["boss@partner.example"]),
    Row("allowed cc and bcc", ["a@allowed.example"], ["a@allowed.example", "b@allowed.example",
        "c@allowed.example"], cc=["b@allowed.example"], bcc=["c@allowed.example"]),
    Row("cyrillic look-alike", ["alice@\u0430llowed.example"], None),
    Row("address as display name", [f'"alice@allowed.example" <{EVIL}>'], None),
    Row("comma list", [f"alice@allowed.example, {EVIL}"], None),
    Row("semicolon list", [f"alice@allowed.example; {EVIL}"], None),
    Row("quoted allowed address", [f'"boss@partner.example"@{EVIL.split("@")[1]}'], None),
    Row("evil bcc", ["alice@allowed.example"], None, bcc=[EVIL]),
    Row("evil cc", ["alice@allowed.example"], None, cc=[EVIL]),
    Row("other partner address", ["other@partner.example"], None),
    Row("subdomain of an allowed domain", ["a@sub.allowed.example"], None),
]  # fmt: skip


class Outcomes:
    """The sent / send_failed events of one agent, by command_id, as they arrive."""

    def __init__(self) -> None:
        self.events: dict[str, MessageSent | MessageSendFailed] = {}
        self._arrived = asyncio.Condition()

    async def on_message(self, msg: Msg) -> None:
        kind = MessageSent if ".sent." in msg.subject else MessageSendFailed
        event = kind.model_validate_json(msg.data)
        async with self._arrived:
            self.events[event.command_id] = event
            self._arrived.notify_all()

    async def of(self, command_ids: list[str], timeout: float = 60) -> list[Any]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: all(c in self.events for c in command_ids))
        return [self.events[c] for c in command_ids]


@pytest.fixture
async def restricted_agent(api: httpx.AsyncClient, mail_stack: MailStack) -> tuple[Agent, str]:
    """An agent of a client org whose rules are ``RULES``; answers it and the client org id."""
    agent = await agent_with_mailbox(api, mail_stack)
    client_org_id = new_id("client")
    body = {"name": "Acme", "email_domain": mail_stack.domain,
            "restrictions": {"allowed_recipients": RULES}}  # fmt: skip
    (await api.put(f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}", json=body)).raise_for_status()
    link = {"org_id": ORG, "client_org_id": client_org_id}
    (await api.put(f"/bridge/agents/{agent.agent_id}", json=link)).raise_for_status()
    return agent, client_org_id


@pytest.fixture
async def outcomes(nc: Client, restricted_agent: tuple[Agent, str]) -> AsyncIterator[Outcomes]:
    watcher = Outcomes()
    agent_id = restricted_agent[0].agent_id
    subscriptions = [
        await nc.subscribe(kind.subject_for(agent_id), cb=watcher.on_message)
        for kind in (MessageSent, MessageSendFailed)
    ]
    yield watcher
    for subscription in subscriptions:
        await subscription.unsubscribe()


def send_command(agent_id: str, row: Row) -> SendMessage:
    return SendMessage(
        agent_id=agent_id, to=row.to, cc=row.cc, bcc=row.bcc, subject=row.name, text="policy"
    )


async def accepted_by_postfix(mail_stack: MailStack, message_id: str, count: int) -> list[str]:
    """The recipients Postfix logged for the message, once all ``count`` are logged."""

    async def all_logged() -> list[str] | None:
        found = maillog.recipients(mail_stack.postfix_log, message_id)
        return found if len(found) >= count else None

    return await eventually(all_logged, what=f"{count} recipients of {message_id} in Postfix's log")


async def test_only_allowed_recipients_ever_reach_rcpt_to(
    nc: Client, mail_stack: MailStack, restricted_agent: tuple[Agent, str], outcomes: Outcomes
) -> None:
    agent = restricted_agent[0]
    commands = [send_command(agent.agent_id, row) for row in TABLE]
    for command in commands:
        await publish(nc.jetstream(), command)
    events = await outcomes.of([c.command_id for c in commands])

    for row, event in zip(TABLE, events, strict=True):
        if row.envelope is None:
            assert isinstance(event, MessageSendFailed), row.name
            assert (event.outcome, event.error.code) == ("blocked", "recipient_not_allowed"), row
            continue
        assert isinstance(event, MessageSent), (row.name, event)
        logged = await accepted_by_postfix(mail_stack, event.message_id, len(row.envelope))
        assert sorted(a.lower() for a in logged) == sorted(row.envelope), row.name
    for command, event in zip(commands, events, strict=True):
        if isinstance(event, MessageSendFailed):
            message_id = f"<{command.command_id}@{mail_stack.domain}>"
            assert not maillog.queue_ids(mail_stack.postfix_log, message_id), command.subject
    assert not maillog.mentions(mail_stack.postfix_log, EVIL)


async def test_policy_counts_its_refusals_for_operators(
    system: RunningSystem, nc: Client, restricted_agent: tuple[Agent, str], outcomes: Outcomes
) -> None:
    before = counted(await metrics_of(system, "policy"), REFUSALS)
    command = send_command(restricted_agent[0].agent_id, Row("refused", [EVIL], None))
    await publish(nc.jetstream(), command)
    await outcomes.of([command.command_id])
    assert counted(await metrics_of(system, "policy"), REFUSALS) == before + 1


async def test_a_send_that_fails_for_good_gives_its_unit_of_quota_back(
    api: httpx.AsyncClient, system: RunningSystem, nc: Client, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack, saved_password="not-the-password")
    client_org_id = new_id("client")
    limit = {"name": "Acme", "restrictions": {"max_per_hour": 1}}
    (
        await api.put(f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}", json=limit)
    ).raise_for_status()
    link = {"org_id": ORG, "client_org_id": client_org_id}
    (await api.put(f"/bridge/agents/{agent.agent_id}", json=link)).raise_for_status()
    path = f"/bridge/agents/{agent.agent_id}/messages"
    released = counted(await metrics_of(system, "policy"), RELEASED)

    first = await api.post(path, json={"to": ["a@allowed.example"], "subject": "1", "text": "x"})
    assert (await settled(api, f"{path}/{first.json()['command_id']}"))["status"] == "failed"

    async def given_back() -> bool:  # policy hears the failure on MAIL_EVT and releases
        return counted(await metrics_of(system, "policy"), RELEASED) > released

    await eventually(given_back, what="the failed send's unit of quota released")
    config = imap_config(mail_stack.endpoints, agent.address, agent.password)
    (await api.put(f"/bridge/agents/{agent.agent_id}/email-config", json=config)).raise_for_status()
    second = await api.post(path, json={"to": ["a@allowed.example"], "subject": "2", "text": "x"})
    assert (await settled(api, f"{path}/{second.json()['command_id']}"))["status"] == "sent"
    third = await api.post(path, json={"to": ["a@allowed.example"], "subject": "3", "text": "x"})
    assert (await settled(api, f"{path}/{third.json()['command_id']}"))["status"] == "blocked"


async def test_linking_an_agent_to_a_client_org_restricts_its_very_next_send(
    api: httpx.AsyncClient, nc: Client, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    path = f"/bridge/agents/{agent.agent_id}/messages"
    first = await api.post(path, json={"to": [EVIL], "subject": "free", "text": "x"})
    assert (await settled(api, f"{path}/{first.json()['command_id']}"))["status"] == "sent"

    client_org_id = new_id("client")
    rules = {"name": "Acme", "restrictions": {"allowed_recipients": RULES}}
    (
        await api.put(f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}", json=rules)
    ).raise_for_status()
    updated = await nc.subscribe(AgentUpdated.subject_for(agent.agent_id))
    link = {"org_id": ORG, "client_org_id": client_org_id}
    (await api.put(f"/bridge/agents/{agent.agent_id}", json=link)).raise_for_status()
    await updated.next_msg(timeout=30)  # the workers hear it too, and forget the old link

    second = await api.post(path, json={"to": [EVIL], "subject": "bound", "text": "x"})
    assert (await settled(api, f"{path}/{second.json()['command_id']}"))["status"] == "blocked"


async def test_a_sender_outside_the_client_orgs_domain_is_refused(
    api: httpx.AsyncClient, nc: Client, restricted_agent: tuple[Agent, str], outcomes: Outcomes
) -> None:
    agent, client_org_id = restricted_agent
    body = {"name": "Acme", "email_domain": "acme.example"}
    path = f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}"
    (await api.put(path, json=body)).raise_for_status()
    command = send_command(agent.agent_id, Row("from outside", ["a@allowed.example"], None))
    await publish(nc.jetstream(), command)
    (event,) = await outcomes.of([command.command_id])
    assert isinstance(event, MessageSendFailed)
    assert (event.outcome, event.error.code) == ("blocked", "domain_not_allowed")


@pytest.fixture
def three_workers(system: RunningSystem) -> AsyncIterator[None]:
    """Two more mail-worker replicas beside the system's own, on the same shared consumer."""
    template = next(s for s in system.supervisor.services if s.name == "mail-worker")
    extra = Supervisor(worker_replicas(template, 2, ack_wait=60.0))
    with extra:
        extra.wait_ready(timeout=60)
        yield


async def test_thirty_concurrent_sends_with_a_limit_of_ten_deliver_exactly_ten(
    api: httpx.AsyncClient, nc: Client, mail_stack: MailStack,
    restricted_agent: tuple[Agent, str], outcomes: Outcomes, three_workers: None,
) -> None:  # fmt: skip
    agent, client_org_id = restricted_agent
    recipient, _ = await new_recipient(mail_stack)
    body = {"name": "Acme", "restrictions": {"max_per_hour": 10}}
    (await api.put(f"/bridge/orgs/{ORG}/client-orgs/{client_org_id}", json=body)).raise_for_status()
    commands = [
        SendMessage(agent_id=agent.agent_id, to=[recipient], subject=f"n{i}", text="limit")
        for i in range(30)
    ]
    await asyncio.gather(*(publish(nc.jetstream(), command) for command in commands))
    events = await outcomes.of([c.command_id for c in commands], timeout=120)

    sent = [e for e in events if isinstance(e, MessageSent)]
    blocked = [e for e in events if isinstance(e, MessageSendFailed)]
    assert (len(sent), len(blocked)) == (10, 20)
    assert {(e.outcome, e.error.code) for e in blocked} == {("blocked", "send_limit_reached")}
    assert await delivered(mail_stack, recipient, count=10) == 10
