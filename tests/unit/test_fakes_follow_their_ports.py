"""The fakes of ``tests/unit/fakes.py`` keep every promise of the port they stand for.

Each class runs one contract of ``tests/ports`` against one fake; the same contract runs against
the real adapter in ``tests/integration/test_adapters_follow_their_ports.py``. A fake that drifts
from its adapter fails here, in milliseconds, rather than as an e2e test that nobody can explain.
"""

from __future__ import annotations

from mailbridge.config_api.ports import AgentTokenStore, AuditLog, ConfigRepository, UiSessionStore
from mailbridge.mail_worker.ports import CursorStore, SendLedger
from mailbridge.policy.ports import ClientOrgs, OrgApps, SendQuota
from mailbridge.shared.content import ContentStore
from mailbridge.shared.ids import new_id
from tests.fakes.config_api import (
    FakeConfigRepository,
    MemoryAgentTokens,
    MemoryAuditLog,
    MemoryUiSessions,
)
from tests.fakes.mail_worker import MemoryContentStore, MemoryCursorStore, MemoryLedger
from tests.fakes.policy import MemoryClientOrgs, MemoryOrgApps, MemorySendQuota
from tests.ports.agent_token_store import AgentTokenStoreContract
from tests.ports.audit_log import AuditLogContract
from tests.ports.client_orgs import ClientOrgsContract
from tests.ports.config_repository import ConfigRepositoryContract
from tests.ports.content_store import ContentStoreContract
from tests.ports.cursor_store import CursorStoreContract
from tests.ports.org_apps import OrgAppsContract
from tests.ports.outbox import Written, as_written
from tests.ports.send_ledger import SendLedgerContract
from tests.ports.send_quota import SendQuotaContract
from tests.ports.ui_session_store import UiSessionStoreContract


class TestFakeConfigRepository(ConfigRepositoryContract):
    async def make(self) -> ConfigRepository:
        self.repo = FakeConfigRepository()
        return self.repo

    async def written(self, agent_id: str) -> list[Written]:
        return [as_written(e) for e in self.repo.outbox if getattr(e, "agent_id", None) == agent_id]


class TestMemoryAuditLog(AuditLogContract):
    async def make(self) -> AuditLog:
        self.trail = MemoryAuditLog()
        return self.trail

    async def known_agent(self, org_id: str) -> str:
        agent_id = new_id("agent")
        self.trail.orgs[agent_id] = org_id
        return agent_id


class TestMemoryUiSessions(UiSessionStoreContract):
    async def make(self) -> UiSessionStore:
        return MemoryUiSessions()


class TestMemoryAgentTokens(AgentTokenStoreContract):
    async def make(self) -> AgentTokenStore:
        return MemoryAgentTokens()


class TestMemoryLedger(SendLedgerContract):
    async def make(self) -> SendLedger:
        return MemoryLedger()


class TestMemoryCursorStore(CursorStoreContract):
    async def make(self) -> CursorStore:
        return MemoryCursorStore()


class TestMemoryContentStore(ContentStoreContract):
    async def make(self) -> ContentStore:
        return MemoryContentStore()


class WritesToAnOutboxList:
    """A fake that keeps the events of its changes in ``outbox``, which ``written`` reads."""

    store: MemoryOrgApps | MemoryClientOrgs

    async def written(self, org_id: str) -> list[Written]:
        return [as_written(e) for e in self.store.outbox if getattr(e, "org_id", None) == org_id]


class TestMemoryOrgApps(WritesToAnOutboxList, OrgAppsContract):
    async def make(self) -> OrgApps:
        self.store = MemoryOrgApps()
        return self.store


class TestMemoryClientOrgs(WritesToAnOutboxList, ClientOrgsContract):
    async def make(self) -> ClientOrgs:
        self.store = MemoryClientOrgs()
        return self.store


class TestMemorySendQuota(SendQuotaContract):
    async def make(self) -> SendQuota:
        return MemorySendQuota()
