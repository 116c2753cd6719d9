"""The real adapters keep every promise of their ports, on a real PostgreSQL and NATS server.

Each class runs one contract of ``tests/ports`` against one adapter, over the production schema
(migrated here) and the production bucket names; the same contract runs against the fake in
``tests/unit/test_fakes_follow_their_ports.py``. Every test makes its own ids, so the shared
tables and buckets never mix one test's rows with another's.
"""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from nats.js import JetStreamContext

from mailbridge.config_api.adapters.agent_tokens import PostgresAgentTokenStore
from mailbridge.config_api.adapters.audit import PostgresAuditLog
from mailbridge.config_api.adapters.postgres import SCHEMA, PostgresConfigRepository
from mailbridge.config_api.adapters.ui_sessions import PostgresUiSessionStore
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.ports import (
    AgentTokenStore,
    AuditLog,
    ConfigRepository,
    UiSessionStore,
)
from mailbridge.mail_worker.adapters import cursors, ledger
from mailbridge.mail_worker.adapters.cursors import NatsKvCursorStore
from mailbridge.mail_worker.adapters.kv import JsonBucket
from mailbridge.mail_worker.adapters.ledger import NatsKvSendLedger
from mailbridge.mail_worker.ports import CursorStore, SendLedger
from mailbridge.policy.adapters.postgres import PostgresClientOrgs, PostgresOrgApps
from mailbridge.policy.adapters.quota import PostgresSendQuota
from mailbridge.policy.ports import ClientOrgs, OrgApps, SendQuota
from mailbridge.shared import postgres
from mailbridge.shared.content import ContentStore, NatsObjectContentStore
from mailbridge.shared.ids import new_id
from tests.ports.agent_token_store import AgentTokenStoreContract
from tests.ports.audit_log import AuditLogContract
from tests.ports.client_orgs import ClientOrgsContract
from tests.ports.config_repository import ConfigRepositoryContract
from tests.ports.content_store import ContentStoreContract
from tests.ports.cursor_store import CursorStoreContract
from tests.ports.org_apps import OrgAppsContract
from tests.ports.outbox import Written
from tests.ports.send_ledger import SendLedgerContract
from tests.ports.send_quota import SendQuotaContract
from tests.ports.ui_session_store import UiSessionStoreContract

SERVICES = Path(__file__).resolve().parents[2] / "services"


class OnPostgres:
    """A test class whose adapters share the pool, with ``schema`` migrated from ``migrations``."""

    schema: str
    migrations: Path

    @pytest.fixture(autouse=True)
    async def _migrated(self, pool: asyncpg.Pool) -> None:
        async with pool.acquire() as connection:
            await postgres.migrate(connection, self.schema, self.migrations)
        self.pool = pool


class OnJetStream:
    @pytest.fixture(autouse=True)
    def _jetstream(self, js: JetStreamContext) -> None:
        self.js = js


class TestPostgresConfigRepository(OnPostgres, ConfigRepositoryContract):
    schema, migrations = SCHEMA, SERVICES / "config-api/migrations"

    async def make(self) -> ConfigRepository:
        return PostgresConfigRepository(self.pool)

    async def written(self, agent_id: str) -> list[Written]:
        rows = await self.pool.fetch(
            "SELECT subject, payload FROM config_api.outbox"
            " WHERE payload::jsonb ->> 'agent_id' = $1 ORDER BY id",
            agent_id,
        )
        return [(row["subject"], json.loads(row["payload"])) for row in rows]


class TestPostgresAuditLog(OnPostgres, AuditLogContract):
    schema, migrations = SCHEMA, SERVICES / "config-api/migrations"

    async def make(self) -> AuditLog:
        return PostgresAuditLog(self.pool)

    async def known_agent(self, org_id: str) -> str:
        agent_id = new_id("agent")
        await PostgresConfigRepository(self.pool).upsert_agent(agent_id, AgentIn(org_id=org_id), [])
        return agent_id


class TestPostgresUiSessionStore(OnPostgres, UiSessionStoreContract):
    schema, migrations = SCHEMA, SERVICES / "config-api/migrations"

    async def make(self) -> UiSessionStore:
        return PostgresUiSessionStore(self.pool)


class TestPostgresAgentTokenStore(OnPostgres, AgentTokenStoreContract):
    schema, migrations = SCHEMA, SERVICES / "config-api/migrations"

    async def make(self) -> AgentTokenStore:
        return PostgresAgentTokenStore(self.pool)


class TestNatsKvSendLedger(OnJetStream, SendLedgerContract):
    async def make(self) -> SendLedger:
        bucket = JsonBucket(ledger.BUCKET, ledger.WEEK_SECONDS)
        await bucket.start(self.js)
        return NatsKvSendLedger(bucket)


class TestNatsKvCursorStore(OnJetStream, CursorStoreContract):
    async def make(self) -> CursorStore:
        bucket = JsonBucket(cursors.BUCKET)
        await bucket.start(self.js)
        return NatsKvCursorStore(bucket)


class TestNatsObjectContentStore(OnJetStream, ContentStoreContract):
    async def make(self) -> ContentStore:
        store = NatsObjectContentStore()
        await store.start(self.js)
        return store


POLICY_MIGRATIONS = SERVICES / "policy/migrations"


class OnPolicyOutbox(OnPostgres):
    """A policy store, whose changes' events ``written`` reads back from ``policy.outbox``."""

    schema, migrations = "policy", POLICY_MIGRATIONS

    async def written(self, org_id: str) -> list[Written]:
        rows = await self.pool.fetch(
            "SELECT subject, payload FROM policy.outbox"
            " WHERE payload::jsonb ->> 'org_id' = $1 ORDER BY id",
            org_id,
        )
        return [(row["subject"], json.loads(row["payload"])) for row in rows]


class TestPostgresOrgApps(OnPolicyOutbox, OrgAppsContract):
    async def make(self) -> OrgApps:
        return PostgresOrgApps(self.pool)


class TestPostgresClientOrgs(OnPolicyOutbox, ClientOrgsContract):
    async def make(self) -> ClientOrgs:
        return PostgresClientOrgs(self.pool)


class TestPostgresSendQuota(OnPostgres, SendQuotaContract):
    schema, migrations = "policy", POLICY_MIGRATIONS

    async def make(self) -> SendQuota:
        return PostgresSendQuota(self.pool)
