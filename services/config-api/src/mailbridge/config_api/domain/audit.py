"""The audit trail, as pure rules: what happened to an agent's mailbox and why, one entry each.

An entry is built here from an allowlist of each event's or request's fields, never from the
whole payload: a body, an attachment, a password, a token or a client secret has no field to go
into (``tests/unit/test_audit_entries.py`` proves it over every string an event may carry). Its
``source_id`` is what makes it one entry however often it is recorded: the kind and the event's
dedupe id (or the send's command id), unique in the table.

Kinds not yet recorded are named so that what adds them (approval before sending) records them
through ``ports.AuditLog.record``, as the MCP server records its tool calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    ConnectionTested,
    EmailConfigDeleted,
    EmailConfigSaved,
    Event,
    GrantAuthorized,
    GrantRefreshFailed,
    GrantRevoked,
    MessageApproved,
    MessageHeld,
    MessageReceived,
    MessageRejected,
    MessageSendFailed,
    MessageSent,
    SendMessage,
    SendOutcome,
)

MAX_TEXT = 200  # characters of one string in an entry (a subject, an address)
MAX_ITEMS = 50  # strings of one list in an entry (recipients, scopes)
MAX_PAGE = 200
DEFAULT_PAGE = 50
CURSOR_PATTERN = r"^\d{1,20}\.\d{1,20}$"

MAIL_WORKER = "mail-worker"  # the actor of what a mail-worker reports (tests, sends, receipts)
OAUTH_BROKER = "oauth-broker"
CONFIG_API = "config-api"  # the actor of what config-api does on its own (an approval's expiry)


class AuditKind(StrEnum):
    CONFIG_SAVED = "config.saved"
    CONFIG_DELETED = "config.deleted"
    OAUTH_AUTHORIZED = "oauth.authorized"
    OAUTH_REFRESH_FAILED = "oauth.refresh_failed"
    OAUTH_REVOKED = "oauth.revoked"
    CONNECTION_TESTED = "connection.tested"
    SEND_REQUESTED = "send.requested"
    SEND_SENT = "send.sent"
    SEND_FAILED = "send.failed"
    SEND_BLOCKED = "send.blocked"
    SEND_UNKNOWN = "send.unknown"
    MAIL_RECEIVED = "mail.received"
    # approval before sending: held by policy; approved or rejected by a person (the actor), or
    # rejected by config-api when nobody decided in time
    SEND_HELD = "send.held"
    SEND_APPROVED = "send.approved"
    SEND_REJECTED = "send.rejected"
    MCP_TOOL_CALLED = "mcp.tool_called"  # recorded by the MCP server (issue 16 item 2)


Detail = str | int | bool | list[str] | None


class AuditEntry(BaseModel):
    """One thing that happened, as recorded; the agent's org is stored beside it on insert."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent_id: str
    kind: AuditKind
    occurred_at: AwareDatetime
    actor: str = Field(description="who: `api-key:{id}`, `ui-session:{id}`, `mail-worker`, …")
    summary: str
    details: dict[str, Detail] = Field(default_factory=dict)
    source_id: str = Field(default_factory=lambda: new_id("aud"), exclude=True)


def entry(
    agent_id: str,
    kind: AuditKind,
    *,
    occurred_at: datetime,
    actor: str,
    summary: str,
    source: str | None = None,
    **details: Detail,
) -> AuditEntry:
    """An entry with every string bounded; ``source`` (an event's dedupe id, a command id) makes
    recording it again a no-op."""
    return AuditEntry(
        agent_id=agent_id,
        kind=kind,
        occurred_at=occurred_at,
        actor=_bounded(actor),
        summary=_bounded(summary),
        details={key: _bounded_detail(value) for key, value in details.items()},
        **({"source_id": f"{kind.value}/{source}"} if source is not None else {}),
    )


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _bounded_detail(value: Detail) -> Detail:
    if isinstance(value, str):
        return _bounded(value)
    if isinstance(value, list):
        return [_bounded(item) for item in value[:MAX_ITEMS]]
    return value


def actor_of(principal: Principal) -> str:
    """An Email tab session's principal names itself (``ui-session:…``), as an agent token's
    does; an API key is named by its id, never by its secret."""
    return principal.key_id if ":" in principal.key_id else f"api-key:{principal.key_id}"


# -- what config-api records itself, in the transaction of the change --------------------------


def config_saved(event: EmailConfigSaved, principal: Principal) -> AuditEntry:
    return entry(
        event.agent_id,
        AuditKind.CONFIG_SAVED,
        occurred_at=event.occurred_at,
        actor=actor_of(principal),
        source=event.event_id,
        summary=f"{event.provider.value} config saved for {event.email or '(address to come)'}",
        provider=event.provider.value,
        email=event.email,
    )


def config_deleted(event: EmailConfigDeleted, principal: Principal) -> AuditEntry:
    return entry(
        event.agent_id,
        AuditKind.CONFIG_DELETED,
        occurred_at=event.occurred_at,
        actor=actor_of(principal),
        source=event.event_id,
        summary="email config deleted: disconnected",
    )


def send_requested(command: SendMessage, principal: Principal) -> AuditEntry:
    """Who asked to send what to whom; the bodies and attachments stay out (their count shows)."""
    recipients = [*command.to, *command.cc, *command.bcc]
    return entry(
        command.agent_id,
        AuditKind.SEND_REQUESTED,
        occurred_at=command.issued_at,
        actor=actor_of(principal),
        source=command.command_id,
        summary=f"send requested to {len(recipients)} recipient(s): {command.subject}",
        command_id=command.command_id,
        to=command.to,
        cc=command.cc,
        bcc=command.bcc,
        subject=command.subject,
        in_reply_to=command.in_reply_to,
        attachments=len(command.attachments) if command.content_ref is None else None,
    )


def tool_called(
    agent_id: str,
    *,
    actor: str,
    tool: str,
    occurred_at: datetime,
    code: str | None = None,
    command_id: str | None = None,
) -> AuditEntry:
    """An MCP tool call (for the MCP server): which tool, whether it failed and with what code,
    and the send it queued; never its arguments."""
    outcome = f"failed: {code}" if code else "ok"
    return entry(
        agent_id,
        AuditKind.MCP_TOOL_CALLED,
        occurred_at=occurred_at,
        actor=actor,
        summary=f"MCP tool {tool} called: {outcome}",
        tool=tool,
        ok=code is None,
        code=code,
        command_id=command_id,
    )


# -- what the consumed events say ---------------------------------------------------------------


def of_event(event: Event) -> AuditEntry | None:
    """The entry an event consumed from MAIL_EVT or OAUTH_EVT makes; None for one not audited
    (a poll's progress, say)."""
    mapper = _MAPPERS.get(type(event))
    return mapper(event) if mapper is not None else None


def audited_events() -> Iterable[type[Event]]:
    return tuple(_MAPPERS)


def _of(event: Event, kind: AuditKind, actor: str, summary: str, **details: Detail) -> AuditEntry:
    agent_id = str(getattr(event, "agent_id"))  # noqa: B009 (every audited event has one)
    return entry(
        agent_id,
        kind,
        occurred_at=event.occurred_at,
        actor=actor,
        summary=summary,
        source=event.dedupe_id(),
        **details,
    )


def _tested(event: ConnectionTested) -> AuditEntry:
    code = event.error.code if event.error else None
    summary = "connection test passed" if event.ok else f"connection test failed: {code}"
    return _of(
        event,
        AuditKind.CONNECTION_TESTED,
        MAIL_WORKER,
        summary,
        command_id=event.command_id,
        ok=event.ok,
        code=code,
        email=event.email,
    )


def _sent(event: MessageSent) -> AuditEntry:
    """Policy authorizes every send before it is submitted, so a sent one was allowed."""
    return _of(
        event,
        AuditKind.SEND_SENT,
        MAIL_WORKER,
        f"sent (policy allowed it) as {event.message_id}",
        command_id=event.command_id,
        verdict="allowed",
        message_id=event.message_id,
        accepted_recipients=event.accepted_recipients,
    )


_FAILURES = {
    SendOutcome.BLOCKED: (AuditKind.SEND_BLOCKED, "blocked by policy"),
    SendOutcome.FAILED: (AuditKind.SEND_FAILED, "send failed"),
    SendOutcome.UNKNOWN: (AuditKind.SEND_UNKNOWN, "send outcome unknown (not retried)"),
}


def _send_failed(event: MessageSendFailed) -> AuditEntry:
    kind, said = _FAILURES[event.outcome]
    verdict = "blocked" if event.outcome is SendOutcome.BLOCKED else None
    return _of(
        event,
        kind,
        MAIL_WORKER,
        f"{said}: {event.error.code}",
        command_id=event.command_id,
        outcome=event.outcome.value,
        verdict=verdict,
        code=event.error.code,
    )


def _received(event: MessageReceived) -> AuditEntry:
    """Who wrote and about what; never the text, the HTML or the attachments."""
    sender = event.from_ or "(no sender)"
    return _of(
        event,
        AuditKind.MAIL_RECEIVED,
        MAIL_WORKER,
        f"received from {sender}: {event.subject or ''}",
        sender=event.from_,
        subject=event.subject,
        message_id=event.message_id,
        mailbox=event.mailbox,
    )


def _authorized(event: GrantAuthorized) -> AuditEntry:
    return _of(
        event,
        AuditKind.OAUTH_AUTHORIZED,
        OAUTH_BROKER,
        f"{event.provider.value} authorized as {event.email}",
        provider=event.provider.value,
        email=event.email,
        scopes=event.scopes,
    )


def _refresh_failed(event: GrantRefreshFailed) -> AuditEntry:
    return _of(
        event,
        AuditKind.OAUTH_REFRESH_FAILED,
        OAUTH_BROKER,
        f"{event.provider.value} token refresh failed: {event.error.code}",
        provider=event.provider.value,
        code=event.error.code,
    )


def _revoked(event: GrantRevoked) -> AuditEntry:
    return _of(
        event,
        AuditKind.OAUTH_REVOKED,
        OAUTH_BROKER,
        f"{event.provider.value} grant revoked",
        provider=event.provider.value,
    )


def _held(event: MessageHeld) -> AuditEntry:
    """Policy's verdict: held, with the mode that held it and for whom; never the content."""
    return _of(
        event,
        AuditKind.SEND_HELD,
        MAIL_WORKER,
        f"held for approval ({event.hold.reason.value})",
        command_id=event.command_id,
        verdict="held",
        reason=event.hold.reason.value,
        recipients=event.hold.recipients,
    )


def _approved(event: MessageApproved) -> AuditEntry:
    summary = f"approved by {event.actor}"
    return _of(event, AuditKind.SEND_APPROVED, event.actor, summary, command_id=event.command_id)


def _rejected(event: MessageRejected) -> AuditEntry:
    """By a person (the actor), or by nobody in time (``approval_expired``)."""
    code = event.error.code if event.error else None
    actor = event.actor or CONFIG_API
    summary = f"rejected by {event.actor}" if event.actor else f"rejected: {code}"
    return _of(
        event, AuditKind.SEND_REJECTED, actor, summary, command_id=event.command_id, code=code
    )


_MAPPERS: dict[type[Event], Callable[[Any], AuditEntry]] = {
    MessageHeld: _held,
    MessageApproved: _approved,
    MessageRejected: _rejected,
    ConnectionTested: _tested,
    MessageSent: _sent,
    MessageSendFailed: _send_failed,
    MessageReceived: _received,
    GrantAuthorized: _authorized,
    GrantRefreshFailed: _refresh_failed,
    GrantRevoked: _revoked,
}


# -- reading it back ----------------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Position:
    """Where a page ended: the last entry's time and id. The next page is strictly older in
    (occurred_at, id), so entries inserted meanwhile never shift it (keyset, not offset)."""

    occurred_at: datetime
    entry_id: int

    def cursor(self) -> str:
        return f"{(self.occurred_at - _EPOCH) // _MICROSECOND}.{self.entry_id}"

    @classmethod
    def of_cursor(cls, cursor: str) -> Position:
        micros, _, entry_id = cursor.partition(".")
        return cls(_EPOCH + int(micros) * _MICROSECOND, int(entry_id))


@dataclass(frozen=True)
class AuditQuery:
    agent_id: str
    kinds: frozenset[AuditKind] = frozenset()  # none: every kind
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    after: Position | None = None
    limit: int = DEFAULT_PAGE
    # set by the handler from the caller: an org's sees what happened while the agent was its own
    org_id: str | None = None


def kinds_of(values: Iterable[str]) -> frozenset[AuditKind]:
    """``kind=a&kind=b`` and ``kind=a,b`` alike; an unknown kind is refused (422), not ignored."""
    named = {part.strip() for value in values for part in value.split(",") if part.strip()}
    unknown = named - {kind.value for kind in AuditKind}
    if unknown:
        known = ", ".join(kind.value for kind in AuditKind)
        raise MailbridgeError(
            ErrorCode.INVALID_INPUT, f"Unknown audit kind(s) {sorted(unknown)}; known: {known}."
        )
    return frozenset(AuditKind(name) for name in named)


class AuditEntryView(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry_id: str
    kind: AuditKind
    occurred_at: AwareDatetime
    actor: str
    summary: str
    details: dict[str, Detail]


class AuditPage(BaseModel):
    """``GET /bridge/agents/{agent_id}/audit``: newest first."""

    model_config = ConfigDict(frozen=True)

    agent_id: str
    entries: list[AuditEntryView]
    next_cursor: str | None = Field(description="for the next (older) page; null on the last")

    @classmethod
    def of(cls, agent_id: str, found: list[AuditEntryView], limit: int) -> AuditPage:
        """From up to ``limit + 1`` entries: one more than the page says there is a next."""
        page = found[:limit]
        last = page[-1] if len(found) > limit else None
        cursor = Position(last.occurred_at, int(last.entry_id)).cursor() if last else None
        return cls(agent_id=agent_id, entries=page, next_cursor=cursor)
