"""Held sends on the real PostgreSQL: racing decisions decide once and queue the send at most
once; the expiry takes only undecided, old holds, and never one a person is deciding; policy's
holds and contacts let through exactly the approved send."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from mailbridge.config_api.adapters.approvals import PostgresApprovals
from mailbridge.config_api.adapters.postgres import PostgresConfigRepository
from mailbridge.config_api.adapters.sends import PostgresSendLedger
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.domain.outgoing import Decision
from mailbridge.config_api.ports import HeldSend
from mailbridge.policy import handlers as policy_handlers
from mailbridge.policy.adapters.approval import PostgresContacts, PostgresSendHolds
from mailbridge.policy.adapters.quota import PostgresSendQuota
from mailbridge.shared import postgres
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    ApprovalMode,
    AuthorizeSend,
    Message,
    MessageApproved,
    MessageHeld,
    MessageRejected,
    SendHold,
    SendMessage,
)
from tests.fakes.policy import MemoryClientOrgs

SERVICES = Path(__file__).resolve().parents[2] / "services"
RACES = 20


@pytest.fixture
async def migrated(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as connection:
        await postgres.migrate(connection, "config_api", SERVICES / "config-api/migrations")
        await postgres.migrate(connection, "policy", SERVICES / "policy/migrations")
    return pool


async def held_send(pool: asyncpg.Pool) -> MessageHeld:
    """A new agent's send, held (as the mail-worker's event records it)."""
    agent_id = new_id("agent")
    await PostgresConfigRepository(pool).upsert_agent(agent_id, AgentIn(org_id="o1"), [])
    command = SendMessage(agent_id=agent_id, to=["new@partner.org"], subject="hi")
    hold = SendHold(reason=ApprovalMode.FIRST_CONTACT, recipients=["new@partner.org"])
    held = MessageHeld(agent_id=agent_id, command_id=command.command_id, hold=hold, command=command)
    assert await PostgresApprovals(pool).hold(held)
    return held


async def approving(held: HeldSend) -> Sequence[Message]:
    await asyncio.sleep(0.01)  # policy's rpc, while the row is locked
    ids = {"agent_id": held.agent_id, "command_id": held.command_id}
    return [held.command, MessageApproved(**ids, actor="api-key:k1")]


async def rejecting(held: HeldSend) -> Sequence[Message]:
    return [MessageRejected(agent_id=held.agent_id, command_id=held.command_id, actor="api-key:k2")]


async def queued_commands(pool: asyncpg.Pool, command_id: str) -> int:
    """Outbox rows that queue the send (not the decision's event)."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM config_api.outbox WHERE subject LIKE 'cmd.mail.message.send.%'"
        " AND payload::jsonb->>'command_id' = $1",
        command_id,
    )
    return count


async def decided(
    approvals: PostgresApprovals, held: MessageHeld, wanted: Decision
) -> bool | MailbridgeError | None:
    effects = approving if wanted is Decision.APPROVED else rejecting
    try:
        return await approvals.decide(held.agent_id, held.command_id, wanted, "api-key:k", effects)
    except MailbridgeError as refused:
        return refused


async def test_an_approve_and_a_reject_at_once_decide_once_and_queue_the_send_at_most_once(
    migrated: asyncpg.Pool,
) -> None:
    approvals, ledger = PostgresApprovals(migrated), PostgresSendLedger(migrated)
    winners = []
    for race in range(RACES):
        held = await held_send(migrated)
        wanted = [Decision.APPROVED, Decision.REJECTED][:: 1 if race % 2 else -1]  # each first
        outcomes = dict(
            zip(
                wanted,
                await asyncio.gather(*(decided(approvals, held, w) for w in wanted)),
                strict=True,
            )
        )
        winner = next(w for w, outcome in outcomes.items() if outcome is True)
        loser = next(o for o in outcomes.values() if o is not True)
        assert isinstance(loser, MailbridgeError)
        assert loser.code is ErrorCode.NOT_HELD
        view = await ledger.find(held.agent_id, held.command_id)
        assert view is not None
        approved = winner is Decision.APPROVED
        assert view.status == ("queued" if approved else "rejected")
        assert await queued_commands(migrated, held.command_id) == (1 if approved else 0)
        winners.append(winner)
    assert set(winners) == {Decision.APPROVED, Decision.REJECTED}  # both orders were raced


async def test_many_approvals_at_once_queue_the_send_once(migrated: asyncpg.Pool) -> None:
    approvals = PostgresApprovals(migrated)
    held = await held_send(migrated)

    outcomes = await asyncio.gather(
        *(decided(approvals, held, Decision.APPROVED) for _ in range(8))
    )

    assert sorted(outcomes, key=str) == [False] * 7 + [True]
    assert await queued_commands(migrated, held.command_id) == 1


async def test_a_refused_approval_leaves_the_send_held(migrated: asyncpg.Pool) -> None:
    approvals, ledger = PostgresApprovals(migrated), PostgresSendLedger(migrated)
    held = await held_send(migrated)

    async def over_the_limit(_: HeldSend) -> Sequence[Message]:
        raise MailbridgeError(ErrorCode.SEND_LIMIT_REACHED)

    with pytest.raises(MailbridgeError, match="send_limit_reached"):
        await approvals.decide(
            held.agent_id, held.command_id, Decision.APPROVED, "api-key:k", over_the_limit
        )
    view = await ledger.find(held.agent_id, held.command_id)
    assert view is not None
    assert (view.status, view.decision) == ("held", None)
    assert await queued_commands(migrated, held.command_id) == 0


async def test_the_expiry_takes_undecided_old_holds_only_and_never_one_being_decided(
    migrated: asyncpg.Pool,
) -> None:
    approvals, ledger = PostgresApprovals(migrated), PostgresSendLedger(migrated)
    old, busy, decided_old, young = [await held_send(migrated) for _ in range(4)]
    await migrated.execute(
        "UPDATE config_api.http_sends SET held_at = now() - interval '2 hours'"
        " WHERE command_id = ANY($1)",
        [old.command_id, busy.command_id, decided_old.command_id],
    )
    assert await decided(approvals, decided_old, Decision.APPROVED) is True
    cutoff = datetime.now(UTC) - timedelta(hours=1)

    async with migrated.acquire() as person, person.transaction():  # deciding ``busy`` now
        await person.execute(
            "SELECT 1 FROM config_api.http_sends WHERE command_id = $1 FOR UPDATE", busy.command_id
        )
        first = await approvals.expire(cutoff, rejecting)
    second = await approvals.expire(cutoff, rejecting)

    mine = {old.command_id, busy.command_id, decided_old.command_id, young.command_id}
    assert [h.command_id for h in first if h.command_id in mine] == [old.command_id]
    assert [h.command_id for h in second if h.command_id in mine] == [busy.command_id]
    shown = {h.command_id: await ledger.find(h.agent_id, h.command_id) for h in (old, young)}
    expired, waiting = shown[old.command_id], shown[young.command_id]
    assert expired is not None
    assert expired.status == "rejected"
    assert expired.error is not None
    assert expired.error.code is ErrorCode.APPROVAL_EXPIRED
    assert waiting is not None
    assert waiting.status == "held"


async def test_a_send_published_on_nats_is_held_once_and_never_over_a_decision_or_another_agent(
    migrated: asyncpg.Pool,
) -> None:
    approvals = PostgresApprovals(migrated)
    held = await held_send(migrated)  # no row before: as a send an agent runtime published
    assert await decided(approvals, held, Decision.REJECTED) is True

    assert not await approvals.hold(held)  # a redelivered hold: the decision stands
    stranger = await held_send(migrated)
    forged = held.model_copy(update={"agent_id": stranger.agent_id})
    assert not await approvals.hold(forged)  # another agent's command id


async def test_policy_lets_through_exactly_the_approved_send(migrated: asyncpg.Pool) -> None:
    holds, contacts, quota = (
        PostgresSendHolds(migrated),
        PostgresContacts(migrated),
        PostgresSendQuota(migrated),
    )
    agent_id = new_id("agent")

    async def authorize(*recipients: str) -> bool:
        request = AuthorizeSend(
            agent_id=agent_id, command_id="cmd_1", sender="a@acme.com",
            recipients=list(recipients), approval=ApprovalMode.FIRST_CONTACT,
        )  # fmt: skip
        verdict = await policy_handlers.authorize_send(
            request, client_orgs=MemoryClientOrgs(), quota=quota, holds=holds, contacts=contacts
        )
        return verdict.allowed

    assert not await authorize("new@partner.org")
    assert await holds.find(agent_id, "cmd_1") is not None  # held, with its recipients
    await holds.approve(agent_id, "cmd_1")
    assert await authorize("NEW@partner.org")
    assert not await authorize("new@partner.org", "other@partner.org")
    await contacts.record(agent_id, ["other@partner.org", "other@partner.org"])
    assert await contacts.known(agent_id, ["other@partner.org", "x@y.z"]) == {"other@partner.org"}
