"""OAuth sign-ins for Microsoft and Google mailboxes: begin one for an agent, and see where one
stands (the popup's own pages are in ``oauth_popup``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Request

from mailbridge.config_api.domain.oauth import (
    AuthorizationBegun,
    AuthorizeIn,
    FlowView,
    ui_origin_of,
)
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import CallerOrSession
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    AgentId,
    FlowId,
    OAuthDep,
    RepoDep,
    SettingsDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import oauth_flows

router = resource_router(prefix="/bridge")


@router.post(
    "/agents/{agent_id}/email-config/authorize",
    tags=["oauth"],
    summary="Begin an OAuth sign-in, to open in a popup",
    responses={
        200: json_answer(
            "The flow: open `authorization_url` in a popup.", examples.AUTHORIZATION_BEGUN
        ),
        **problems(401, 403, 404, 409, 422, 503),
    },
)
async def authorize(
    agent_id: AgentId,
    request: Request,
    repo: RepoDep,
    broker: OAuthDep,
    settings: SettingsDep,
    caller: CallerOrSession,
    body: Annotated[AuthorizeIn | None, Body()] = None,
) -> AuthorizationBegun:
    """Begins a sign-in for the agent's saved Microsoft or Google config (409 for IMAP or none).
    The popup's last page posts its result to the UI origin this request came from (`Origin`,
    else `Referer`; without either, the first of `MAILBRIDGE_UI_ORIGINS`), which must be one of
    `MAILBRIDGE_UI_ORIGINS` (422 otherwise). `reauthorize` with `scopes` asks for more scopes."""
    headers = request.headers
    ui_origin = ui_origin_of(headers.get("origin"), headers.get("referer"), settings)
    return await oauth_flows.begin_authorization(
        agent_id, body or AuthorizeIn(), ui_origin, repo=repo, principal=caller, broker=broker
    )


@router.get(
    "/oauth/flows/{flow_id}",
    tags=["oauth"],
    summary="Where a sign-in stands",
    responses={
        200: json_answer("The flow's status.", examples.FLOW_COMPLETED, examples.FLOW_FAILED),
        **problems(401, 404, 422, 503),
    },
)
async def get_flow(
    flow_id: FlowId, repo: RepoDep, broker: OAuthDep, caller: CallerOrSession
) -> FlowView:
    """`pending`, `completed`, `failed`, `cancelled` or `expired`, with the address signed in or
    the error: what the popup reports, for when it cannot (its opener cut, the window closed).
    A flow of another org's agent is answered 404."""
    return await oauth_flows.get_flow(flow_id, repo=repo, principal=caller, broker=broker)
