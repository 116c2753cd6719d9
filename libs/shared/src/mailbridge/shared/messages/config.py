"""Events of config-api and the credentials request the mail-worker makes of it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages.approval import ApprovalMode
from mailbridge.shared.messages.base import Event, Reply, Request, WireSecret


class MailboxStatus(StrEnum):
    NOT_CONNECTED = "not_connected"
    CONFIGURED = "configured"
    AWAITING_AUTHORIZATION = "awaiting_authorization"
    CONNECTED = "connected"
    ERROR = "error"


class Provider(StrEnum):
    IMAP = "imap"
    MICROSOFT = "microsoft"
    GOOGLE = "google"


class LastError(BaseModel):
    """``last_error`` of SPEC §3: what went wrong, the fix-it hint, when and where."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: str
    message: str
    hint: str
    at: AwareDatetime
    source: str

    @classmethod
    def from_info(cls, info: ErrorInfo, *, at: AwareDatetime, source: str) -> LastError:
        return cls(code=info.code, message=info.message, hint=info.hint, at=at, source=source)


class EmailConfigSaved(Event):
    subject_template = subjects.EVT_EMAIL_CONFIG_SAVED

    agent_id: str
    provider: Provider
    email: str | None = None
    version: int


class AgentUpdated(Event):
    """An agent was registered or changed: which org and client org govern its mail now."""

    subject_template = subjects.EVT_AGENT_UPDATED

    agent_id: str
    org_id: str
    client_org_id: str | None = None
    name: str | None = None
    approval: ApprovalMode | None = None


class EmailConfigDeleted(Event):
    subject_template = subjects.EVT_EMAIL_CONFIG_DELETED

    agent_id: str


class StatusChanged(Event):
    subject_template = subjects.EVT_STATUS_CHANGED

    agent_id: str
    status: MailboxStatus
    previous: MailboxStatus
    last_error: LastError | None = None


class ServerEndpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    host: str
    port: int
    security: str


class GetCredentials(Request):
    subject_template = subjects.RPC_CREDENTIALS_GET

    agent_id: str


class Credentials(BaseModel):
    """An agent's opened mailbox credentials. Repr and default dumps mask the password."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    provider: Provider
    email: str
    username: str | None = None
    password: WireSecret | None = None
    imap: ServerEndpoint | None = None
    smtp: ServerEndpoint | None = None
    # a Google or Microsoft account reached over IMAP and SMTP (``imap``/``smtp`` set), logging in
    # with XOAUTH2 and a mail token from the oauth-broker instead of through the provider's API
    xoauth2: bool = False
    agent_id: str | None = None  # whose mail token an ``xoauth2`` login asks the oauth-broker for
    org_id: str | None = None  # the agent's org and client org: what policy checks a send against
    client_org_id: str | None = None
    approval: ApprovalMode | None = (
        None  # the agent's own approval mode, overriding its client org's
    )


class CredentialsReply(Reply):
    """For the mail-worker only: crosses NATS in an rpc reply, never in a stream."""

    agent_id: str
    credentials: Credentials | None = None
    error: ErrorInfo | None = None
