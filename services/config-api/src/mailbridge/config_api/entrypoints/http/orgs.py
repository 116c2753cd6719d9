"""config-api's org routes: an org's shared OAuth apps and its client organizations, which the
policy service stores; config-api checks the key and forwards each request over NATS."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Path, Response
from pydantic import BaseModel, BeforeValidator, ValidationError

from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import Caller
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import ID_PATTERN, PolicyDep, resource_router
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import orgs as handlers_org
from mailbridge.shared.messages import (
    ClientOrgIn,
    ClientOrgView,
    OrgEmailConfigIn,
    OrgEmailConfigView,
)

OrgId = Annotated[str, Path(pattern=ID_PATTERN, examples=[examples.ORG_ID])]
ClientOrgId = Annotated[str, Path(pattern=ID_PATTERN, examples=[examples.CLIENT_ORG_ID])]


def strictly(model: type[BaseModel]) -> BeforeValidator:
    """Refuse what the schema refuses, where pydantic's lax mode would convert (``false`` for an
    integer limit would read as 0): the body must validate strictly before it is read as usual.
    Strictly as JSON, which it came as: there an enum's value is its string (``"always"``), where
    strict Python validation would want the enum member itself."""

    def check(raw: object) -> object:
        try:
            as_json = json.dumps(raw)
        except (TypeError, ValueError):  # a body that came as something else (a form, bytes)
            raise ValueError("the body is not a JSON object") from None
        try:
            model.model_validate_json(as_json, strict=True)
        except ValidationError as exc:
            raise ValueError("; ".join(_located(error) for error in exc.errors())) from None
        return raw

    return BeforeValidator(check)


def _located(error: Any) -> str:
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


OrgAppsBody = Annotated[OrgEmailConfigIn, strictly(OrgEmailConfigIn)]
ClientOrgBody = Annotated[ClientOrgIn, strictly(ClientOrgIn)]
router = resource_router(prefix="/bridge/orgs/{org_id}", tags=["orgs"])

ERRORS = problems(401, 404, 422, 503)
DELETED: dict[int | str, dict[str, Any]] = {204: {"description": "Deleted."}}


@router.get(
    "/email-config",
    summary="Read an org's shared OAuth apps",
    responses={
        200: json_answer(
            "The org's apps, secrets never shown; null where the org shares none.",
            examples.ORG_CONFIG,
            examples.ORG_CONFIG_EMPTY,
        ),
        **ERRORS,
    },
)
async def get_org_email_config(
    org_id: OrgId, policy: PolicyDep, caller: Caller
) -> OrgEmailConfigView:
    """The Microsoft and Google apps the org's agents inherit when they have none of their own."""
    return await handlers_org.get_org_config(org_id, principal=caller, policy=policy)


@router.put(
    "/email-config",
    summary="Set an org's shared OAuth apps",
    responses={200: json_answer("The org's apps as stored.", examples.ORG_CONFIG), **ERRORS},
)
async def put_org_email_config(
    org_id: OrgId, body: OrgAppsBody, policy: PolicyDep, caller: Caller
) -> OrgEmailConfigView:
    """One app per provider; a provider left out is removed, an omitted secret kept."""
    return await handlers_org.put_org_config(org_id, body, principal=caller, policy=policy)


@router.delete(
    "/email-config",
    summary="Remove an org's shared OAuth apps",
    status_code=204,
    response_class=Response,
    responses={**DELETED, **ERRORS},
)
async def delete_org_email_config(org_id: OrgId, policy: PolicyDep, caller: Caller) -> Response:
    """Agents that inherited an app have none until they get their own or the org a new one."""
    await handlers_org.delete_org_config(org_id, principal=caller, policy=policy)
    return Response(status_code=204)


@router.get(
    "/client-orgs/{client_org_id}",
    summary="Read a client organization",
    responses={
        200: json_answer("The client org and its restrictions.", examples.CLIENT_ORG),
        **ERRORS,
    },
)
async def get_client_org(
    org_id: OrgId, client_org_id: ClientOrgId, policy: PolicyDep, caller: Caller
) -> ClientOrgView:
    """Name, email domain, restrictions, and each restriction as a warning line."""
    return await handlers_org.get_client_org(org_id, client_org_id, principal=caller, policy=policy)


@router.put(
    "/client-orgs/{client_org_id}",
    summary="Create or replace a client organization",
    responses={200: json_answer("The client org as stored.", examples.CLIENT_ORG), **ERRORS},
)
async def put_client_org(
    org_id: OrgId,
    client_org_id: ClientOrgId,
    body: ClientOrgBody,
    policy: PolicyDep,
    caller: Caller,
) -> ClientOrgView:
    """Agents registered with this ``client_org_id`` send only within its restrictions."""
    return await handlers_org.put_client_org(
        org_id, client_org_id, body, principal=caller, policy=policy
    )


@router.delete(
    "/client-orgs/{client_org_id}",
    summary="Delete a client organization",
    status_code=204,
    response_class=Response,
    responses={**DELETED, **ERRORS},
)
async def delete_client_org(
    org_id: OrgId, client_org_id: ClientOrgId, policy: PolicyDep, caller: Caller
) -> Response:
    await handlers_org.delete_client_org(org_id, client_org_id, principal=caller, policy=policy)
    return Response(status_code=204)
