"""An agent's email configuration: read, save, delete, and the IMAP/SMTP presets."""

from __future__ import annotations

from typing import Annotated

from fastapi import Body, Response

from mailbridge.config_api.domain import versions
from mailbridge.config_api.domain.email_config import (
    EmailConfigIn,
    EmailConfigView,
)
from mailbridge.config_api.domain.oauth import DisconnectedView
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import CallerOrSession
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    AgentId,
    CommandsDep,
    IfMatch,
    PolicyDep,
    RepoDep,
    RevokerDep,
    SealerDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import email_config
from mailbridge.shared.presets import PRESETS, Preset

router = resource_router(prefix="/bridge")

ETAG = {
    "ETag": {"description": "the config's version, for `If-Match`", "schema": {"type": "string"}}
}


@router.get(
    "/agents/{agent_id}/email-config",
    tags=["email-config"],
    summary="Read an agent's email configuration and status",
    responses={
        200: {
            **json_answer(
                "The configuration without secrets.",
                examples.CONNECTED,
                examples.INHERITED_APP,
                examples.IN_ERROR,
                examples.NOT_CONNECTED,
            ),
            "headers": ETAG,
        },
        **problems(401, 404, 422),
    },
)
async def get_email_config(
    agent_id: AgentId, repo: RepoDep, policy: PolicyDep, caller: CallerOrSession, response: Response
) -> EmailConfigView:
    """The config without secrets, the status badge, the last error and the last test, and the
    banners: the OAuth app the agent uses (`inherited` from its org or not) and its client org.
    When the policy service does not answer within a second, the banners are null."""
    view = await email_config.get_email_config(agent_id, repo=repo, principal=caller, policy=policy)
    response.headers["ETag"] = versions.etag(view.version)
    return view


@router.put(
    "/agents/{agent_id}/email-config",
    tags=["email-config"],
    summary="Save an agent's email configuration",
    responses={
        200: {
            **json_answer(
                "The configuration as saved, status `configured` (or `awaiting_authorization`).",
                examples.SAVED,
            ),
            "headers": ETAG,
        },
        **problems(401, 403, 404, 412, 422, 503),
    },
)
async def put_email_config(
    agent_id: AgentId,
    body: Annotated[EmailConfigIn, Body()],
    repo: RepoDep,
    sealer: SealerDep,
    policy: PolicyDep,
    commands: CommandsDep,
    caller: CallerOrSession,
    response: Response,
    if_match: IfMatch = None,
) -> EmailConfigView:
    """Save; an omitted secret keeps the stored one. ``If-Match`` guards against lost updates.
    A Microsoft or Google config without an app of its own uses its org's shared app (422 when the
    org has none for that provider)."""
    view = await email_config.save_email_config(
        agent_id,
        body,
        repo=repo,
        sealer=sealer,
        principal=caller,
        policy=policy,
        expected_version=versions.parse_if_match(if_match),
        commands=commands,
    )
    response.headers["ETag"] = versions.etag(view.version)
    return view


@router.delete(
    "/agents/{agent_id}/email-config",
    tags=["email-config"],
    summary="Disconnect an agent's mailbox",
    responses={
        200: json_answer(
            "The agent, now `not_connected`; what became of its OAuth grant.",
            examples.NOT_CONNECTED,
            examples.DISCONNECTED_OAUTH,
        ),
        **problems(401, 403, 404, 412, 422),
    },
)
async def delete_email_config(
    agent_id: AgentId,
    repo: RepoDep,
    revoker: RevokerDep,
    caller: CallerOrSession,
    if_match: IfMatch = None,
) -> DisconnectedView:
    """Disconnect: secrets erased, status ``not_connected``. An OAuth grant is revoked at the
    provider where it allows (Google); Microsoft has none, so its tokens are erased, and
    ``revocation`` says which."""
    return await email_config.delete_email_config(
        agent_id,
        repo=repo,
        principal=caller,
        revoker=revoker,
        expected_version=versions.parse_if_match(if_match),
    )


@router.get(
    "/email-presets",
    tags=["email-config"],
    summary="List the IMAP/SMTP presets",
    responses={
        200: json_answer("Every preset, `custom` last.", examples.PRESET_LIST),
        **problems(401),
    },
)
async def email_presets(_: CallerOrSession) -> list[Preset]:
    """IMAP/SMTP presets: Microsoft 365, Google, Yahoo, Zoho by region, Fastmail, iCloud, custom."""
    return list(PRESETS)
