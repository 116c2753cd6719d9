"""Registering an agent, and loading one as its caller may see it (another org's: 404)."""

from __future__ import annotations

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import (
    AgentIn,
    StatusRecord,
    StoredConfig,
)
from mailbridge.config_api.ports import (
    ConfigRepository,
)
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.messages import (
    AgentUpdated,
)


async def register_agent(
    agent_id: str, agent: AgentIn, *, repo: ConfigRepository, principal: Principal
) -> None:
    current_org = await repo.agent_org(agent_id)
    if current_org is not None and not principal.can_access(current_org):
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"No agent {agent_id!r}.")
    if not principal.can_access(agent.org_id):
        raise MailbridgeError(
            ErrorCode.INVALID_INPUT, "This key cannot register agents of that org."
        )
    updated = AgentUpdated(agent_id=agent_id, **agent.model_dump())
    await repo.upsert_agent(agent_id, agent, [updated])  # workers drop what they cached of it


async def load_agent(
    agent_id: str, repo: ConfigRepository, principal: Principal
) -> tuple[AgentIn, StoredConfig | None, StatusRecord]:
    """The agent, its config and status, in one query; another org's agent, or for an Email tab
    session another agent than its own, is answered exactly like a missing one (404, never 403)."""
    agent, config, status = await repo.load_owned(agent_id)
    if agent is None or not principal.can_access(agent.org_id, agent_id):
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"No agent {agent_id!r}.")
    return agent, config, status


async def load_configured(
    agent_id: str, repo: ConfigRepository, principal: Principal
) -> StoredConfig:
    """The agent's config; 409 ``not_configured`` when it has none yet."""
    _, config, _ = await load_agent(agent_id, repo, principal)
    if config is None:
        raise MailbridgeError(ErrorCode.NOT_CONFIGURED)
    return config
