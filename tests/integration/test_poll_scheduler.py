"""The poll scheduler's query on the real schema: which mailboxes it polls, which it holds back
for their backoff, and which ask to report a success (config_api/adapters/poll_scheduler.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from mailbridge.config_api.adapters.poll_scheduler import PollScheduler
from mailbridge.config_api.adapters.postgres import MIGRATIONS, SCHEMA, PostgresConfigRepository
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord
from mailbridge.config_api.domain.poll_backoff import PollBackoff, PollState
from mailbridge.shared import postgres
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import LastError, MailboxStatus, PollMailbox
from tests.fakes.clock import FixedClock
from tests.fakes.config_api import RecordingPublisher
from tests.ports.config_repository import config_of

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def backing_off(retry_in: timedelta) -> PollState:
    backoff = PollBackoff(
        failures=1, failing_since=NOW, retry_at=NOW + retry_in, last_failed_poll=NOW
    )
    return PollState(restarted_at=NOW - timedelta(hours=1), backoff=backoff)


def error(code: str) -> LastError:
    return LastError(code=code, message="m", hint="h", at=NOW, source="poll")


CONNECTED = MailboxStatus.CONNECTED
ERROR = MailboxStatus.ERROR
CASES = {
    "connected": (StatusRecord(status=CONNECTED), False),
    "connected, backoff over": (StatusRecord(status=CONNECTED, poll=backing_off(-1 * timedelta(seconds=1))), True),
    "timeouts for long, at the cap": (StatusRecord(status=ERROR, last_error=error("timeout"), poll=backing_off(timedelta(0))), True),
}  # fmt: skip
HELD = {
    "connected, backing off": StatusRecord(status=CONNECTED, poll=backing_off(timedelta(minutes=1))),
    "password refused": StatusRecord(status=ERROR, last_error=error("auth_failed")),
    "configured": StatusRecord(status=MailboxStatus.CONFIGURED),
}  # fmt: skip


@pytest.fixture
async def migrated(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as connection:
        await postgres.migrate(connection, SCHEMA, MIGRATIONS)
    return pool


async def test_polls_what_is_due_holds_back_what_backs_off_and_stops_at_a_refused_password(
    migrated: asyncpg.Pool,
) -> None:
    repo, agents = PostgresConfigRepository(migrated), {}
    every = {**{name: status for name, (status, _) in CASES.items()}, **HELD}
    for name, status in every.items():
        agents[name] = await stored(repo, status)
    bus, registry = RecordingPublisher(), CollectorRegistry()
    scheduler = PollScheduler(
        migrated, bus, FixedClock(NOW), interval=60, tick=5, registry=registry
    )

    await scheduler.publish_due()

    polls = {p.agent_id: p for p in bus.published if isinstance(p, PollMailbox)}
    assert {name for name, agent in agents.items() if agent in polls} == set(CASES)
    for name, (_, reports) in CASES.items():
        assert polls[agents[name]].report_success is reports, name
    in_backoff = registry.get_sample_value("mailbridge_poll_backoff_mailboxes")
    assert in_backoff is not None and in_backoff >= 3  # other tests' mailboxes may count too


async def stored(repo: PostgresConfigRepository, status: StatusRecord) -> str:
    agent_id = new_id("agent")
    await repo.upsert_agent(agent_id, AgentIn(org_id="org-sched"), [])
    await repo.save(config_of(agent_id), status, [])
    return agent_id
