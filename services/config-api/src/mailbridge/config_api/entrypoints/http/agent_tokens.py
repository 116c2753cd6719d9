"""The tokens an agent itself holds: made with an API key of its org (or an operator key), shown
once, listed without their values, revoked. A token reaches only its agent's mail, its sends and
``/mcp``; a revoked one is refused from its next request on, on every replica."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Path, Response

from mailbridge.config_api.domain.agent_tokens import (
    TOKEN_ID_PATTERN,
    AgentTokenCreated,
    AgentTokenIn,
    AgentTokenList,
    AgentTokenView,
)
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import Caller
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    AgentId,
    AgentTokensDep,
    RepoDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import agent_tokens

router = resource_router(prefix="/bridge", tags=["agent-tokens"])

TokenId = Annotated[str, Path(pattern=TOKEN_ID_PATTERN, examples=["3f9c2a7d1b6e4058"])]
CREATED = AgentTokenCreated(
    token_id="3f9c2a7d1b6e4058",
    agent_id=examples.AGENT_ID,
    name="claude",
    created_at=examples.AT,
    token="mbat_3f9c2a7d1b6e4058_q8Xl2v0VJcB3T9yW1nRkS4dPzA6uE7hMfGiYwQ5oL_c",
)


@router.post(
    "/agents/{agent_id}/agent-tokens",
    status_code=201,
    summary="Make a token for the agent itself",
    responses={
        201: json_answer("The token, shown this once.", CREATED),
        **problems(401, 403, 404, 422),
    },
)
async def create_agent_token(
    agent_id: AgentId,
    repo: RepoDep,
    store: AgentTokensDep,
    caller: Caller,
    body: Annotated[AgentTokenIn | None, Body()] = None,
) -> AgentTokenCreated:
    """A token for ``Authorization: Bearer`` on ``/mcp``, the agent's mail and send routes."""
    return await agent_tokens.create_token(
        agent_id, body or AgentTokenIn(), repo=repo, store=store, principal=caller
    )


@router.get(
    "/agents/{agent_id}/agent-tokens",
    summary="The agent's live tokens",
    responses={
        200: json_answer(
            "Its live tokens, without their values.",
            AgentTokenList(tokens=[AgentTokenView(**CREATED.model_dump(exclude={"token"}))]),
        ),
        **problems(401, 403, 404, 422),
    },
)
async def list_agent_tokens(
    agent_id: AgentId, repo: RepoDep, store: AgentTokensDep, caller: Caller
) -> AgentTokenList:
    """Their ids, names and creation times; never their values."""
    return await agent_tokens.list_tokens(agent_id, repo=repo, store=store, principal=caller)


@router.delete(
    "/agents/{agent_id}/agent-tokens/{token_id}",
    status_code=204,
    summary="Revoke a token",
    responses=problems(401, 403, 404, 422),
)
async def revoke_agent_token(
    agent_id: AgentId, token_id: TokenId, repo: RepoDep, store: AgentTokensDep, caller: Caller
) -> Response:
    """Refused from its next request on, by every replica (tokens are never cached)."""
    await agent_tokens.revoke_token(agent_id, token_id, repo=repo, store=store, principal=caller)
    return Response(status_code=204)
