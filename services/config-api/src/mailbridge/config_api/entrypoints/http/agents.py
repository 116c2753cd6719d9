"""``PUT /bridge/agents/{agent_id}``: register or update an agent."""

from __future__ import annotations

from mailbridge.config_api.domain.email_config import (
    AgentIn,
    AgentView,
)
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import Caller
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    AgentId,
    RepoDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import agents as agent_handlers

router = resource_router(prefix="/bridge")


@router.put(
    "/agents/{agent_id}",
    tags=["agents"],
    summary="Register or update an agent",
    responses={
        200: json_answer("The agent as stored.", examples.AGENT),
        **problems(401, 404, 422),
    },
)
async def put_agent(agent_id: AgentId, agent: AgentIn, repo: RepoDep, caller: Caller) -> AgentView:
    """Creates the agent in ``org_id`` or updates it; an org key may register only its own
    org's agents (422 otherwise), and another org's existing agent is answered 404."""
    await agent_handlers.register_agent(agent_id, agent, repo=repo, principal=caller)
    return AgentView(agent_id=agent_id, **agent.model_dump())
