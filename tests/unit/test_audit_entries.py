"""The audit trail's entries (config_api/domain/audit.py): what each event and request becomes,
that no secret and no body can get into one, and how the trail is recorded and read.

The redaction property fills *every* string an event or a send command can carry (bodies,
attachments, error messages, screening details, ids, subjects) with a distinct marker, and checks
that only the markers of the fields an entry may show appear in it: a mapping that starts to copy
``text``, ``html``, an attachment or an error's message fails here, whatever the value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbridge.config_api.domain import audit
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.audit import AuditEntry, AuditKind, Position
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.handlers import audit as handlers
from mailbridge.config_api.handlers import email_config
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    ApprovalMode,
    Attachment,
    AttachmentInfo,
    CheckResult,
    ConnectionTested,
    ContentRef,
    EmailConfigDeleted,
    EmailConfigSaved,
    GrantAuthorized,
    GrantRefreshFailed,
    GrantRevoked,
    Message,
    MessageApproved,
    MessageHeld,
    MessageReceived,
    MessageRejected,
    MessageSendFailed,
    MessageSent,
    Provider,
    SendHold,
    SendMessage,
    SendOutcome,
)
from mailbridge.shared.messages.screening import LookalikeReason, LookalikeSender, Screening
from tests.factories import BODY, IMAP_JSON, SEALER
from tests.fakes.config_api import FakeConfigRepository, MemoryAuditLog
from tests.fakes.policy_service import FakePolicyService
from tests.support.config_api_app import api_client, container, problem

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
KEY = Principal("3f9c2a1b", "acme")
SESSION = Principal("ui-session:s1", "acme", agent_id="a1")
ERROR = ErrorInfo.of(ErrorCode.RECIPIENT_NOT_ALLOWED)
SCREENED = Screening(
    authserv_id="mx.example",
    lookalike_sender=LookalikeSender(
        reason=LookalikeReason.EDIT_DISTANCE, sender_domain="paypa1.com",
        resembles="paypal.com", detail="one letter off",
    ),
)  # fmt: skip
FILE = Attachment(filename="a.pdf", content_base64="aGk=")

# Each audited message with every field set, and the fields (JSON paths) an entry may show.
FULL: dict[str, tuple[Message, set[str]]] = {
    "tested": (
        ConnectionTested(
            agent_id="a1", command_id="c1", ok=False, email="a@x.example", inbox_total=1,
            unread=1, checks={"imap": CheckResult(ok=False, latency_ms=1, detail="d", error=ERROR)},
            error=ERROR,
        ),
        {"agent_id", "command_id", "email"},
    ),
    "sent": (
        MessageSent(agent_id="a1", command_id="c1", message_id="<m@x>", accepted_recipients=["r"]),
        {"agent_id", "command_id", "message_id", "accepted_recipients.0"},
    ),
    "send failed": (
        MessageSendFailed(agent_id="a1", command_id="c1", outcome=SendOutcome.BLOCKED, error=ERROR),
        {"agent_id", "command_id"},
    ),
    "received": (
        MessageReceived(
            agent_id="a1", uid=1, uidvalidity=1, message_id="<m@x>", from_="f@x", to=["t@x"],
            cc=["c@x"], subject="s", in_reply_to="<p@x>", references=["<p@x>"], text="body",
            html="<p>body</p>", attachments=[AttachmentInfo(filename="a.pdf", content_type="x/y",
            size=1)], provider_message_id="p1", screening=SCREENED,
        ),
        {"agent_id", "mailbox", "message_id", "from", "subject"},
    ),
    "authorized": (
        GrantAuthorized(agent_id="a1", provider=Provider.GOOGLE, email="a@x", scopes=["s"]),
        {"agent_id", "email", "scopes.0"},
    ),
    "refresh failed": (
        GrantRefreshFailed(agent_id="a1", provider=Provider.GOOGLE, error=ERROR), {"agent_id"}
    ),
    "revoked": (GrantRevoked(agent_id="a1", provider=Provider.GOOGLE), {"agent_id"}),
    "send requested": (
        SendMessage(
            agent_id="a1", to=["t@x"], cc=["c@x"], bcc=["b@x"], subject="s", text="body",
            html="<p>body</p>", in_reply_to="<p@x>", attachments=[FILE],
        ),
        {"agent_id", "command_id", "to.0", "cc.0", "bcc.0", "subject", "in_reply_to"},
    ),
    "send requested, content stored": (
        SendMessage(
            agent_id="a1", to=["t@x"], subject="s",
            content_ref=ContentRef(name="n", size=1, sha256="0" * 64),
        ),
        {"agent_id", "command_id", "to.0", "subject"},
    ),
    "config saved": (
        EmailConfigSaved(agent_id="a1", provider=Provider.IMAP, email="a@x", version=1),
        {"agent_id", "email"},
    ),
    "config deleted": (EmailConfigDeleted(agent_id="a1"), {"agent_id"}),
    "held": (
        MessageHeld(
            agent_id="a1", command_id="c1",
            hold=SendHold(reason=ApprovalMode.FIRST_CONTACT, recipients=["r@x"]),
            command=SendMessage(
                agent_id="a1", command_id="c1", to=["r@x"], subject="s", text="body",
                html="<p>body</p>", attachments=[FILE],
            ),
        ),
        {"agent_id", "command_id", "hold.recipients.0"},
    ),
    "approved": (
        MessageApproved(agent_id="a1", command_id="c1", actor="api-key:k1"),
        {"agent_id", "command_id", "actor"},
    ),
    "rejected": (
        MessageRejected(agent_id="a1", command_id="c1", actor="api-key:k1", error=ERROR),
        {"agent_id", "command_id", "actor"},
    ),
}  # fmt: skip


def entry_of(message: Message) -> AuditEntry:
    """What the trail records of a message: config-api's own, or a consumed event's."""
    if isinstance(message, SendMessage):
        return audit.send_requested(message, KEY)
    if isinstance(message, EmailConfigSaved):
        return audit.config_saved(message, KEY)
    if isinstance(message, EmailConfigDeleted):
        return audit.config_deleted(message, KEY)
    found = audit.of_event(message)  # type: ignore[arg-type]
    assert found is not None, f"{type(message).__name__} is not audited"
    return found


def string_paths(value: Any, path: str = "") -> Iterator[str]:
    """Every string leaf of a JSON document, as dotted paths."""
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_paths(item, f"{path}.{index}" if path else str(index))


def put(document: Any, path: str, value: str) -> None:
    *parents, last = path.split(".")
    for step in parents:
        document = document[int(step)] if isinstance(document, list) else document[step]
    document[int(last) if isinstance(document, list) else last] = value


def marked(message: Message, salt: str) -> tuple[Message, dict[str, str]]:
    """The message with each string field that takes any text set to ``MARK{n}X{salt}``; the
    markers by path. Fields that refuse free text (enums, times) keep their value."""
    document, markers = message.model_dump(mode="json", by_alias=True), {}
    for n, path in enumerate(list(string_paths(document))):
        trial = json.loads(json.dumps(document))
        put(trial, path, f"MARK{n}X{salt}")
        try:
            type(message).model_validate(trial)
        except ValueError:
            continue
        document, markers[path] = trial, f"MARK{n}X"
    return type(message).model_validate(document), markers


@pytest.mark.parametrize("name", FULL)
@given(salt=st.text(min_size=0, max_size=300))
def test_an_entry_shows_only_the_fields_it_may_whatever_they_hold(name: str, salt: str) -> None:
    message, shown = FULL[name]
    filled, markers = marked(message, salt)
    recorded = entry_of(filled).model_dump_json()
    leaked = {path for path, marker in markers.items() if marker in recorded} - shown
    assert leaked == set(), f"{name}: an entry shows {sorted(leaked)}"


def test_bodies_attachments_and_error_messages_are_among_the_fields_filled() -> None:
    paths = set(marked(FULL["received"][0], "")[1]) | set(marked(FULL["send requested"][0], "")[1])
    paths |= set(marked(FULL["tested"][0], "")[1])
    assert {"text", "html", "attachments.0.content_base64", "error.message"} <= paths
    assert {"screening.lookalike_sender.detail", "checks.imap.error.message"} <= paths


@given(subject=st.text(min_size=0, max_size=5000), many=st.integers(0, 500))
def test_an_entry_stays_small_however_large_what_it_describes(subject: str, many: int) -> None:
    command = SendMessage(agent_id="a1", to=["t@x.example"] * many, subject=subject)
    recorded = audit.send_requested(command, KEY)
    assert len(recorded.summary) <= audit.MAX_TEXT
    assert len(recorded.details["to"] or []) <= audit.MAX_ITEMS
    assert len(recorded.model_dump_json()) < 16_000


CASES = [
    (MessageSent(agent_id="a1", command_id="c1", message_id="<m@x>"), AuditKind.SEND_SENT,
     "mail-worker", {"verdict": "allowed", "command_id": "c1"}),
    (MessageSendFailed(agent_id="a1", command_id="c2", outcome=SendOutcome.BLOCKED, error=ERROR),
     AuditKind.SEND_BLOCKED, "mail-worker",
     {"verdict": "blocked", "code": "recipient_not_allowed", "command_id": "c2"}),
    (MessageSendFailed(agent_id="a1", command_id="c3", outcome=SendOutcome.UNKNOWN,
     error=ErrorInfo.of(ErrorCode.TIMEOUT)), AuditKind.SEND_UNKNOWN, "mail-worker",
     {"outcome": "unknown", "code": "timeout"}),
    (MessageSendFailed(agent_id="a1", command_id="c4", outcome=SendOutcome.FAILED,
     error=ErrorInfo.of(ErrorCode.AUTH_FAILED)), AuditKind.SEND_FAILED, "mail-worker",
     {"outcome": "failed", "code": "auth_failed", "verdict": None}),
    (ConnectionTested(agent_id="a1", command_id="c5", ok=True), AuditKind.CONNECTION_TESTED,
     "mail-worker", {"ok": True, "code": None}),
    (MessageReceived(agent_id="a1", uid=7, uidvalidity=3, from_="Ada <ada@x>", subject="Hi"),
     AuditKind.MAIL_RECEIVED, "mail-worker", {"sender": "Ada <ada@x>", "subject": "Hi"}),
    (GrantRefreshFailed(agent_id="a1", provider=Provider.MICROSOFT,
     error=ErrorInfo.of(ErrorCode.OAUTH_TOKEN_REVOKED)), AuditKind.OAUTH_REFRESH_FAILED,
     "oauth-broker", {"provider": "microsoft", "code": "oauth_token_revoked"}),
    (MessageHeld(agent_id="a1", command_id="c6", hold=SendHold(reason=ApprovalMode.ALWAYS,
     recipients=["r@x"]), command=SendMessage(agent_id="a1", command_id="c6", to=["r@x"])),
     AuditKind.SEND_HELD, "mail-worker", {"verdict": "held", "reason": "always"}),
    (MessageApproved(agent_id="a1", command_id="c6", actor="api-key:k1"), AuditKind.SEND_APPROVED,
     "api-key:k1", {"command_id": "c6"}),
    (MessageRejected(agent_id="a1", command_id="c7", error=ErrorInfo.of(
     ErrorCode.APPROVAL_EXPIRED)), AuditKind.SEND_REJECTED, "config-api",
     {"code": "approval_expired"}),
]  # fmt: skip


@pytest.mark.parametrize(("event", "kind", "actor", "details"), CASES)
def test_each_event_becomes_its_kind_with_its_why(
    event: Any, kind: AuditKind, actor: str, details: dict[str, object]
) -> None:
    recorded = audit.of_event(event)
    assert recorded is not None
    assert (recorded.kind, recorded.actor, recorded.occurred_at) == (kind, actor, event.occurred_at)
    assert details.items() <= recorded.details.items()
    assert recorded.summary


def test_a_redelivered_message_received_is_the_same_entry_even_as_a_new_event() -> None:
    """A message seen twice (two polls, a replay) has two event ids and one dedupe id."""
    first = MessageReceived(agent_id="a1", uid=7, uidvalidity=3)
    again = first.model_copy(update={"event_id": "evt_other"})
    assert entry_of(first).source_id == entry_of(again).source_id


def test_the_actor_is_the_key_or_session_never_a_secret() -> None:
    assert audit.actor_of(KEY) == "api-key:3f9c2a1b"
    assert audit.actor_of(SESSION) == "ui-session:s1"


@given(
    at=st.datetimes(timezones=st.just(UTC), min_value=datetime(1970, 1, 2)),
    entry_id=st.integers(1, 2**62),
)
def test_a_cursor_names_its_position_exactly(at: datetime, entry_id: int) -> None:
    position = Position(at, entry_id)
    assert Position.of_cursor(position.cursor()) == position


def test_kinds_are_taken_repeated_or_comma_separated_and_an_unknown_one_is_refused() -> None:
    wanted = {AuditKind.SEND_SENT, AuditKind.SEND_BLOCKED, AuditKind.MAIL_RECEIVED}
    assert audit.kinds_of(["send.sent,send.blocked", " mail.received", ""]) == wanted
    with pytest.raises(MailbridgeError) as refused:
        audit.kinds_of(["send.sent,send.exploded"])
    assert refused.value.code is ErrorCode.INVALID_INPUT


async def test_a_consumed_event_is_recorded_once_and_what_is_not_audited_is_passed_over() -> None:
    trail = MemoryAuditLog({"a1": "acme"})
    event = MessageSent(agent_id="a1", command_id="c1", message_id="<m@x>")
    payload = event.model_dump_json().encode()
    assert await handlers.record_event(event.nats_subject(), payload, trail=trail) is True
    assert await handlers.record_event(event.nats_subject(), payload, trail=trail) is False
    polled = "evt.mail.mailbox.polled.v1.a1"
    assert await handlers.record_event(polled, b"{}", trail=trail) is False
    assert await handlers.record_event(event.nats_subject(), b"not json", trail=trail) is False
    assert [row[2].kind for row in trail.rows] == [AuditKind.SEND_SENT]


async def test_a_saved_and_a_deleted_config_are_recorded_with_the_change_by_their_caller() -> None:
    repo = FakeConfigRepository()
    repo.agents["a1"] = AgentIn(org_id="acme")
    await email_config.save_email_config(
        "a1", BODY.validate_python(IMAP_JSON), repo=repo, sealer=SEALER, principal=KEY,
        policy=FakePolicyService(),
    )  # fmt: skip
    with pytest.raises(MailbridgeError):  # a stale version: no change, so no entry
        await email_config.save_email_config(
            "a1", BODY.validate_python(IMAP_JSON), repo=repo, sealer=SEALER, principal=KEY,
            policy=FakePolicyService(), expected_version=7,
        )  # fmt: skip
    assert [(e.kind, e.actor) for e in repo.audit] == [(AuditKind.CONFIG_SAVED, "api-key:3f9c2a1b")]
    assert "app-pw" not in repo.audit[0].model_dump_json()
    assert repo.audit[0].details["email"] == "agent@example.com"


def test_an_entry_is_dated_when_it_happened() -> None:
    command = SendMessage(agent_id="a1", issued_at=AT - timedelta(minutes=1))
    assert audit.send_requested(command, KEY).occurred_at == command.issued_at


async def test_the_route_lists_newest_first_and_refuses_an_unknown_kind_or_a_huge_page() -> None:
    trail = MemoryAuditLog({"a1": "acme"})
    for seconds in (1, 2):
        at_ = AT + timedelta(seconds=seconds)
        await trail.record(audit.of_event(MessageSent(agent_id="a1", command_id=f"c{seconds}",
            message_id="<m@x>", occurred_at=at_)) or pytest.fail("not audited"))  # fmt: skip
    async with api_client(container(audit=trail)) as api:
        listed = await api.get("/bridge/agents/a1/audit", params={"kind": "send.sent", "limit": 1})
        unknown = await api.get("/bridge/agents/a1/audit", params={"kind": "send.exploded"})
        huge = await api.get("/bridge/agents/a1/audit", params={"limit": audit.MAX_PAGE + 1})
        missing = await api.get("/bridge/agents/nobody/audit")
    page = listed.json()
    assert [e["details"]["command_id"] for e in page["entries"]] == ["c2"]
    assert page["next_cursor"] is not None
    assert [problem(a)["code"] for a in (unknown, huge)] == ["invalid_input"] * 2
    assert (missing.status_code, problem(missing)["code"]) == (404, "not_found")
