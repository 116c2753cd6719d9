"""The audit trail: what the consumed events say is recorded once each, and an agent's trail is
read by whoever may see the agent (another org's: 404), newest first."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from pydantic import ValidationError

from mailbridge.config_api.domain import audit
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.audit import AuditPage, AuditQuery
from mailbridge.config_api.handlers.agents import load_agent
from mailbridge.config_api.ports import AuditLog, ConfigRepository
from mailbridge.shared import subjects
from mailbridge.shared.messages import Event

log = logging.getLogger(__name__)

_AUDITED = {kind.subject_template: kind for kind in audit.audited_events()}


async def record_event(subject: str, payload: bytes, *, trail: AuditLog) -> bool:
    """Record what an event from MAIL_EVT or OAUTH_EVT says, once however often it comes; an
    event not audited, or one that does not decode (it would never decode), is passed over."""
    kind = _AUDITED.get(subjects.template_of(subject))
    event = _decoded(kind, subject, payload) if kind is not None else None
    found = audit.of_event(event) if event is not None else None
    return found is not None and await trail.record(found)


def _decoded(kind: type[Event], subject: str, payload: bytes) -> Event | None:
    try:
        return kind.model_validate_json(payload)
    except ValidationError:
        log.warning("not auditing an undecodable %s event", subject, exc_info=True)
        return None


async def list_audit(
    query: AuditQuery, *, repo: ConfigRepository, trail: AuditLog, principal: Principal
) -> AuditPage:
    """A page of the agent's trail; an org's caller sees only the entries of its own org (of
    the time the agent was its own), an operator every entry."""
    await load_agent(query.agent_id, repo, principal)
    return await trail.page(replace(query, org_id=principal.org_id))


async def record_tool_call(
    principal: Principal,
    tool: str,
    *,
    code: str | None,
    command_id: str | None,
    called_at: datetime,
    trail: AuditLog,
) -> None:
    """One MCP tool call of an agent token, at the time it was called (so it comes before
    what it did in the trail): the tool, its outcome, the send it queued. A trail
    that cannot be written is logged, not raised: the call's effect (a send) has happened, and
    an error would have the agent try it again."""
    assert principal.agent_id is not None  # only agent tokens reach the MCP tools
    actor = audit.actor_of(principal)
    entry = audit.tool_called(
        principal.agent_id,
        actor=actor,
        tool=tool,
        occurred_at=called_at,
        code=code,
        command_id=command_id,
    )
    try:
        await trail.record(entry)
    except Exception:
        log.exception("the MCP tool call %s of %s was not audited", tool, principal.agent_id)
