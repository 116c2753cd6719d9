"""Agent tokens: made for one agent by a caller who may see it (an API key of its org, or an
operator key), listed without their values, revoked; and the principal a Bearer token names."""

from __future__ import annotations

from mailbridge.config_api.domain import agent_tokens as tokens
from mailbridge.config_api.domain.agent_tokens import (
    AgentTokenCreated,
    AgentTokenIn,
    AgentTokenList,
    AgentTokenView,
)
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.handlers.agents import load_agent
from mailbridge.config_api.ports import AgentTokenStore, ConfigRepository
from mailbridge.shared.errors import ErrorCode, MailbridgeError


async def create_token(
    agent_id: str,
    body: AgentTokenIn,
    *,
    repo: ConfigRepository,
    store: AgentTokenStore,
    principal: Principal,
) -> AgentTokenCreated:
    """A new token for the agent (404 for an agent the caller may not see)."""
    agent, _, _ = await load_agent(agent_id, repo, principal)
    made, stored = await store.create(agent_id, agent.org_id, body.name)
    return AgentTokenCreated(**AgentTokenView.of(stored).model_dump(), token=made.token)


async def list_tokens(
    agent_id: str, *, repo: ConfigRepository, store: AgentTokenStore, principal: Principal
) -> AgentTokenList:
    await load_agent(agent_id, repo, principal)
    return AgentTokenList(tokens=[AgentTokenView.of(t) for t in await store.live(agent_id)])


async def revoke_token(
    agent_id: str,
    token_id: str,
    *,
    repo: ConfigRepository,
    store: AgentTokenStore,
    principal: Principal,
) -> None:
    """Refused from the next request on, on every replica; 404 for a token not live."""
    await load_agent(agent_id, repo, principal)
    if not await store.revoke(agent_id, token_id):
        raise MailbridgeError(ErrorCode.NOT_FOUND, f"No agent token {token_id!r}.")


async def principal_of(text: str, *, store: AgentTokenStore) -> Principal | None:
    """The principal of a Bearer value that is a live agent token; None for any other text."""
    parsed = tokens.parse(text)
    if parsed is None:
        return None
    token_id, secret = parsed
    return tokens.verify(await store.find(token_id), secret)
