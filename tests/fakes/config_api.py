"""Fakes of config-api's ports (proved against their adapters in tests/ports/)."""

from __future__ import annotations

from mailbridge.config_api.domain import versions
from mailbridge.config_api.domain.email_config import AgentIn, StatusRecord, StoredConfig
from mailbridge.config_api.ports import StatusDecision
from mailbridge.shared.messages import (
    ConnectionTested,
    EmailConfigSaved,
    Event,
    Message,
    Provider,
)


class FakeConfigRepository:
    def __init__(self) -> None:
        self.agents: dict[str, AgentIn] = {}
        self.configs: dict[str, StoredConfig] = {}
        self.statuses: dict[str, StatusRecord] = {}
        self.outbox: list[Event] = []

    async def upsert_agent(self, agent_id: str, agent: AgentIn, events: list[Event]) -> None:
        self.agents[agent_id] = agent
        self.outbox.extend(events)

    async def agent_org(self, agent_id: str) -> str | None:
        agent = self.agents.get(agent_id)
        return agent.org_id if agent else None

    async def load_owned(
        self, agent_id: str
    ) -> tuple[AgentIn | None, StoredConfig | None, StatusRecord]:
        config, status = await self.load(agent_id)
        return self.agents.get(agent_id), config, status

    async def load(self, agent_id: str) -> tuple[StoredConfig | None, StatusRecord]:
        return self.configs.get(agent_id), self.statuses.get(agent_id, StatusRecord())

    def _version(self, agent_id: str) -> int:
        return self.configs[agent_id].version if agent_id in self.configs else 0

    async def save(
        self,
        config: StoredConfig,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
    ) -> StoredConfig:
        versions.check(expected_version, self._version(config.agent_id))
        config = config.model_copy(update={"version": self._version(config.agent_id) + 1})
        self.configs[config.agent_id] = config
        self.statuses[config.agent_id] = status
        self.outbox += [_with_version(event, config.version) for event in events]
        return config

    async def delete(
        self,
        agent_id: str,
        status: StatusRecord,
        events: list[Event],
        expected_version: int | None = None,
    ) -> bool:
        versions.check(expected_version, self._version(agent_id))
        self.statuses.pop(agent_id, None)
        self.outbox += events
        return self.configs.pop(agent_id, None) is not None

    async def update_status(self, agent_id: str, decide: StatusDecision) -> None:
        outcome = decide(*await self.load(agent_id))
        if outcome is not None:
            self.statuses[agent_id], events = outcome
            self.outbox += events

    async def fill_email(self, agent_id: str, provider: Provider, email: str) -> bool:
        config = self.configs.get(agent_id)
        if config is None or config.provider is not provider or config.email is not None:
            return False
        self.configs[agent_id] = config.model_copy(update={"email": email})
        return True


def _with_version(event: Event, version: int) -> Event:
    """As the adapter does: a saved config's event tells the version stored, not the guess."""
    if isinstance(event, EmailConfigSaved):
        return event.model_copy(update={"version": version})
    return event


class RecordingRevoker:
    def __init__(self) -> None:
        self.revoked: list[str] = []

    async def revoke(self, agent_id: str) -> None:
        self.revoked.append(agent_id)


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Message] = []

    async def publish(self, message: Message) -> None:
        self.published.append(message)


class AnsweringResults:
    """Answers each expected command with a result built from it, or never (``answer=None``)."""

    def __init__(self, answer: dict[str, object] | None) -> None:
        self.answer = answer
        self.expected: list[str] = []

    def expect(self, command_id: str) -> None:
        self.expected.append(command_id)

    async def wait(self, command_id: str, timeout: float) -> ConnectionTested | None:
        if self.answer is None:
            return None
        return ConnectionTested(command_id=command_id, **self.answer)  # type: ignore[arg-type]
