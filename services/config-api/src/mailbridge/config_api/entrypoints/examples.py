"""Examples of config-api's answers for the OpenAPI document.

Each is built from the model it illustrates (and, where there is one, the same function the route
answers with), so an example cannot drift from the schema; a contract test validates them all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from mailbridge.config_api.adapters.live import sse
from mailbridge.config_api.domain import audit, detection
from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import (
    AgentView,
    EmailConfigView,
    ImapConfigIn,
    ServerSettings,
    public_settings,
)
from mailbridge.config_api.domain.mail_views import MessagePage, MessageView
from mailbridge.config_api.domain.oauth import (
    AuthorizationBegun,
    DisconnectedView,
    FlowView,
    Revocation,
)
from mailbridge.config_api.domain.outgoing import (
    Decision,
    DecisionView,
    HeldView,
    SendStatus,
    SendView,
)
from mailbridge.config_api.domain.status import last_error_after_test
from mailbridge.config_api.domain.ui_sessions import (
    UiSessionLink,
    UiSessionRenewed,
    UiSessionView,
    link_url,
)
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import (
    ApprovalMode,
    AttachmentInfo,
    CheckResult,
    ClientOrgBanner,
    ClientOrgChanged,
    ClientOrgView,
    ConnectionTested,
    FlowStatus,
    MailboxStatus,
    MessageReceived,
    MessageSendFailed,
    MessageSent,
    MessageSummary,
    OrgAppBanner,
    OrgEmailConfigView,
    OrgOAuthApp,
    Provider,
    Restrictions,
    SendMessage,
    SendOutcome,
    StatusChanged,
)
from mailbridge.shared.presets import BY_ID, PRESETS

AGENT_ID = "agent-42"
AT = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)

AGENT = AgentView(agent_id=AGENT_ID, org_id="acme", client_org_id="acme-emea", name="Support")

TEST_PASSED = ConnectionTested(
    agent_id=AGENT_ID,
    command_id="cmd_01JHK4W6Z9",
    ok=True,
    email="support@fastmail.com",
    inbox_total=1284,
    unread=3,
    checks={
        "imap": CheckResult(ok=True, latency_ms=212, detail="INBOX: 1284 messages, 3 unread"),
        "smtp": CheckResult(ok=True, latency_ms=187, detail="AUTH PLAIN accepted"),
    },
    latency_ms=412,
    event_id="evt_01JHK4W7A2",
    occurred_at=AT,
)
_AUTH_FAILED = ErrorInfo.of(ErrorCode.AUTH_FAILED)
TEST_FAILED = TEST_PASSED.model_copy(
    update={
        "ok": False,
        "inbox_total": None,
        "unread": None,
        "checks": {"imap": CheckResult(ok=False, latency_ms=153, error=_AUTH_FAILED)},
        "latency_ms": 153,
        "error": _AUTH_FAILED,
    }
)

CONNECTED = EmailConfigView(
    agent_id=AGENT_ID,
    provider=Provider.IMAP,
    email="support@fastmail.com",
    settings=public_settings(
        ImapConfigIn(provider="imap", email="support@fastmail.com", preset="fastmail")
    ),
    has_password=True,
    version=3,
    status=MailboxStatus.CONNECTED,
    last_test=TEST_PASSED.model_dump(mode="json", exclude={"event_id"}),
)
SAVED = CONNECTED.model_copy(
    update={"status": MailboxStatus.CONFIGURED, "version": 4, "last_test": None}
)
IN_ERROR = CONNECTED.model_copy(
    update={
        "status": MailboxStatus.ERROR,
        "last_error": last_error_after_test(TEST_FAILED, AT),
        "last_test": TEST_FAILED.model_dump(mode="json", exclude={"event_id"}),
    }
)
NOT_CONNECTED = EmailConfigView(agent_id=AGENT_ID, status=MailboxStatus.NOT_CONNECTED)

ORG_ID, CLIENT_ORG_ID = "acme", "acme-emea"
MICROSOFT_APP = OrgOAuthApp(
    client_id="00000000-0000-0000-0000-000000000001",
    tenant_id="contoso.onmicrosoft.com",
    has_client_secret=True,
    updated_at=AT,
)
ORG_CONFIG = OrgEmailConfigView(org_id=ORG_ID, microsoft=MICROSOFT_APP)
ORG_CONFIG_EMPTY = OrgEmailConfigView(org_id=ORG_ID)
_RESTRICTION_WARNINGS = [
    "Only recipients at acme.com or *.acme-partners.com",
    "Sends limited to 50 per day",
]
CLIENT_ORG = ClientOrgView(
    org_id=ORG_ID,
    client_org_id=CLIENT_ORG_ID,
    name="Acme EMEA",
    email_domain="acme.com",
    restrictions=Restrictions(
        allowed_recipients=["acme.com", "*.acme-partners.com"], max_per_day=50
    ),
    warnings=_RESTRICTION_WARNINGS,
    updated_at=AT,
)
INHERITED_APP = EmailConfigView(
    agent_id=AGENT_ID,
    provider=Provider.MICROSOFT,
    email="support@acme.com",
    version=1,
    status=MailboxStatus.AWAITING_AUTHORIZATION,
    org_oauth_app=OrgAppBanner(
        provider=Provider.MICROSOFT,
        client_id=MICROSOFT_APP.client_id,
        tenant_id=MICROSOFT_APP.tenant_id,
        inherited=True,
    ),
    client_org=ClientOrgBanner(
        client_org_id=CLIENT_ORG_ID,
        name=CLIENT_ORG.name,
        email_domain=CLIENT_ORG.email_domain,
        warnings=_RESTRICTION_WARNINGS,
    ),
    warnings=_RESTRICTION_WARNINGS,
)

FLOW_ID = "flow_01JHK7A3WD"
AUTHORIZATION_BEGUN = AuthorizationBegun(
    authorization_url=f"https://mail.example.com/api/engine/oauth/start?flow={FLOW_ID}",
    flow_id=FLOW_ID,
    expires_at=AT,
)
FLOW_COMPLETED = FlowView(
    flow_id=FLOW_ID,
    agent_id=AGENT_ID,
    provider=Provider.MICROSOFT,
    status=FlowStatus.COMPLETED,
    email="support@acme.com",
    expires_at=AT,
)
FLOW_FAILED = FLOW_COMPLETED.model_copy(
    update={
        "status": FlowStatus.FAILED,
        "email": None,
        "error": ErrorInfo.of(ErrorCode.MAILBOX_MISMATCH).saying(
            "Signed in as someone@acme.com, expected support@acme.com."
        ),
    }
)
DISCONNECTED_OAUTH = DisconnectedView(
    agent_id=AGENT_ID,
    status=MailboxStatus.NOT_CONNECTED,
    revocation=Revocation(
        revoked=True,
        note="Microsoft has no per-grant revocation: the tokens were erased.",
    ),
)

PRESET_LIST = [p.model_dump(mode="json") for p in (PRESETS[0], BY_ID["gmail"], BY_ID["fastmail"])]
DETECTED_BY_MX = detection.hosted_by(BY_ID["microsoft365"], "contoso.com").for_address(
    "support@contoso.com"
)
DETECTED_BY_SRV = detection.Finding(
    "srv",
    imap=ServerSettings(host="mail.acme.com", port=993, security="ssl"),
    smtp=ServerSettings(host="mail.acme.com", port=587, security="starttls"),
    notes=(detection.SRV_NOTE,),
).for_address("support@acme.com")
DETECTED_NOTHING = detection.nothing_found("acme.com").for_address("support@acme.com")

LISTED = MessageSummary(
    message_ref="1736933400.42.SU5CT1g",  # UIDVALIDITY, UID, the folder (INBOX) in base64url
    uid=42,
    message_id="<01JHK5B2QX@example.com>",
    from_="Ada Lovelace <ada@example.com>",
    to=["support@acme.example"],
    subject="Invoice 2025-001",
    date=AT,
    seen=False,
    size=4210,
)
PAGE = MessagePage(folder="INBOX", messages=[LISTED], next_cursor="1736933400.42").model_dump(
    mode="json", by_alias=True
)
READ_EVENT = MessageReceived(
    event_id="evt_01JHK5B2QX",
    occurred_at=AT,
    agent_id=AGENT_ID,
    uid=42,
    uidvalidity=1736933400,
    message_id=LISTED.message_id,
    from_=LISTED.from_,
    to=LISTED.to,
    subject=LISTED.subject,
    date=AT,
    text="Hello, the invoice is attached.\r\n",
    attachments=[AttachmentInfo(filename="invoice.pdf", content_type="application/pdf", size=3100)],
)
READ = MessageView(message_ref=LISTED.message_ref, seen=False, message=READ_EVENT).model_dump(
    mode="json", by_alias=True
)
RAW_MESSAGE = "From: Ada Lovelace <ada@example.com>\r\nSubject: Invoice 2025-001\r\n\r\nHello…"

QUEUED = SendView(command_id="cmd_01JHK5B2QX", status=SendStatus.QUEUED)
SENT = SendView(
    command_id="cmd_01JHK5B2QX",
    status=SendStatus.SENT,
    message_id="<01JHK5B2QX@fastmail.com>",
)
BLOCKED = SendView(
    command_id="cmd_01JHK5C7RM",
    status=SendStatus.BLOCKED,
    error=ErrorInfo.of(ErrorCode.RECIPIENT_NOT_ALLOWED),
)
_HELD_AT = datetime(2025, 1, 14, 9, 30, tzinfo=UTC)
HELD = SendView(
    command_id="cmd_01JHK5D9TS",
    status=SendStatus.HELD,
    held=HeldView(
        reason=ApprovalMode.FIRST_CONTACT, recipients=["new.person@example.org"],
        to=["new.person@example.org"], subject="Your quote", held_at=_HELD_AT,
        expires_at=_HELD_AT + timedelta(hours=24),
    ),
)  # fmt: skip
APPROVED = HELD.model_copy(
    update={
        "status": SendStatus.QUEUED,
        "decision": DecisionView(
            decision=Decision.APPROVED, by="api-key:key_01JHK2", at=_HELD_AT + timedelta(minutes=5)
        ),
    }
)
EXPIRED = HELD.model_copy(
    update={
        "status": SendStatus.REJECTED,
        "error": ErrorInfo.of(ErrorCode.APPROVAL_EXPIRED),
        "decision": DecisionView(decision=Decision.EXPIRED, at=_HELD_AT + timedelta(hours=24)),
    }
)

_KEY = Principal("3f9c2a1b7d4e6f80", "acme")
_SEND = SendMessage(
    agent_id=AGENT_ID,
    command_id=SENT.command_id,
    to=["ada@example.com"],
    subject="Re: Invoice 2025-001",
    text="(bodies are never recorded)",
    issued_at=AT + timedelta(seconds=2),
)
_DELIVERED = MessageSent(
    agent_id=AGENT_ID,
    command_id=_SEND.command_id,
    message_id=SENT.message_id or "",
    accepted_recipients=_SEND.to,
    occurred_at=AT + timedelta(seconds=3),
)
_REFUSED = MessageSendFailed(
    agent_id=AGENT_ID,
    command_id=BLOCKED.command_id,
    outcome=SendOutcome.BLOCKED,
    error=ErrorInfo.of(ErrorCode.RECIPIENT_NOT_ALLOWED),
    occurred_at=AT + timedelta(seconds=1),
)
_AUDITED = [  # newest first, as the route lists them
    audit.of_event(_DELIVERED),
    audit.send_requested(_SEND, _KEY),
    audit.of_event(_REFUSED),
    audit.of_event(READ_EVENT),
]
AUDIT_PAGE = audit.AuditPage(
    agent_id=AGENT_ID,
    entries=[
        audit.AuditEntryView(entry_id=str(1045 - n), **entry.model_dump())
        for n, entry in enumerate(e for e in _AUDITED if e is not None)
    ],
    next_cursor=audit.Position(AT, 1041).cursor(),
)

_WENT_WRONG = StatusChanged(
    agent_id=AGENT_ID,
    status=MailboxStatus.ERROR,
    previous=MailboxStatus.CONNECTED,
    last_error=last_error_after_test(TEST_FAILED, AT),
    event_id="evt_01JHK6D1SN",
    occurred_at=AT,
)
_CLIENT_ORG_CHANGED = ClientOrgChanged(
    org_id=ORG_ID, client_org_id=CLIENT_ORG_ID, event_id="evt_01JHK6F4TB", occurred_at=AT
)
EVENT_STREAM = (
    sse(CONNECTED.model_dump_json(), event="snapshot")
    + sse(_WENT_WRONG.model_dump_json(), event="status", event_id="12-7-3")
    + sse(_CLIENT_ORG_CHANGED.model_dump_json(), event="policy", event_id="12-7-4")
    + ": heartbeat\n\n"
)

UI_SESSION_LINK = UiSessionLink(
    url=link_url(
        "https://mail.example.com", AGENT_ID, "q8Xl2v0VJcB3T9yW1nRkS4dPzA6uE7hMfGiYwQ5oL_c"
    ),
    expires_at=AT,
)
UI_SESSION = UiSessionView(
    agent_id=AGENT_ID,
    agent_name=AGENT.name,
    expires_at=AT,
    csrf_token="3vQ0bq2Yk7dJr8WZc1NnTfL5sUaG9hXmPeE4iRyO6wA",
)
UI_SESSION_RENEWED = UiSessionRenewed(expires_at=AT)

READY = {"ready": True, "nats": True, "database": True}
NOT_READY = {"ready": False, "nats": False, "database": True}


def json_answer(
    description: str, *examples: BaseModel | list[Any] | dict[str, Any]
) -> dict[str, Any]:
    """A ``responses=`` entry: the description and named examples of an ``application/json``."""
    values = [e.model_dump(mode="json") if isinstance(e, BaseModel) else e for e in examples]
    named = {f"example{i}": {"value": value} for i, value in enumerate(values, 1)}
    return {"description": description, "content": {"application/json": {"examples": named}}}
