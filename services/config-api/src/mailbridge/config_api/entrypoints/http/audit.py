"""An agent's audit trail: what happened to its mailbox and why, newest first."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime, BeforeValidator

from mailbridge.config_api.domain import audit
from mailbridge.config_api.domain.audit import AuditKind, AuditPage, AuditQuery, Position
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import Caller
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import AgentId, AuditDep, RepoDep, resource_router
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import audit as handlers

router = resource_router(prefix="/bridge")

Kinds = Annotated[
    list[str],
    Query(
        max_length=len(AuditKind),
        description="only these kinds, repeated or comma-separated: "
        + ", ".join(f"`{kind.value}`" for kind in AuditKind),
    ),
]
_ISO_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_only(value: object) -> object:
    """A date-time as the schema says (ISO 8601), where pydantic would also read a number as
    seconds since 1970 (``until=0.5``)."""
    if isinstance(value, str) and not _ISO_DATE_TIME.match(value):
        raise ValueError("an ISO 8601 date-time with its offset, e.g. 2025-01-15T09:30:00Z")
    return value


Since = Annotated[
    AwareDatetime | None,
    BeforeValidator(_iso_only),
    Query(description="entries at or after this time"),
]
Until = Annotated[
    AwareDatetime | None, BeforeValidator(_iso_only), Query(description="entries before this time")
]
Cursor = Annotated[
    str | None, Query(pattern=audit.CURSOR_PATTERN, description="`next_cursor` of the last page")
]
Limit = Annotated[int, Query(ge=1, le=audit.MAX_PAGE, description="entries on this page")]


@router.get(
    "/agents/{agent_id}/audit",
    tags=["audit"],
    summary="The agent's audit trail, newest first",
    responses={
        200: json_answer("A page of entries, newest first.", examples.AUDIT_PAGE),
        **problems(401, 404, 422),
    },
)
async def list_audit(
    agent_id: AgentId,
    repo: RepoDep,
    trail: AuditDep,
    caller: Caller,
    kind: Kinds = [],  # noqa: B006 (FastAPI copies a default; a list query needs one)
    since: Since = None,
    until: Until = None,
    cursor: Cursor = None,
    limit: Limit = audit.DEFAULT_PAGE,
) -> AuditPage:
    """What happened and why: configs saved and deleted, authorizations, tests, every send
    with its policy verdict and outcome, received mail (sender and subject). Never a secret,
    never a message body. The next page, older, from ``next_cursor``; new entries never shift
    it."""
    query = AuditQuery(
        agent_id,
        kinds=audit.kinds_of(kind),
        since=since,
        until=until,
        after=Position.of_cursor(cursor) if cursor else None,
        limit=limit,
    )
    return await handlers.list_audit(query, repo=repo, trail=trail, principal=caller)
