"""Events and requests of the oauth-broker, and the one it asks config-api.

A flow goes begin (config-api's ``authorize``) → start (the popup opens ``/api/engine/oauth/start``
and the flow is bound to that browser) → complete (the provider's redirect to the callback).
Secrets (a client secret, an access token, the browser binding) cross only in these core NATS
requests and replies, never in a stream.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages.base import Event, Reply, Request, WireSecret
from mailbridge.shared.messages.config import Provider


class FlowStatus(StrEnum):
    """What ``GET /bridge/oauth/flows/{flow_id}`` and the callback page say of a flow."""

    PENDING = "pending"  # begun or started; the provider has not come back
    COMPLETED = "completed"  # the grant is stored; the automatic connection test follows
    FAILED = "failed"  # refused (state, issuer, scope, mailbox, provider error): see ``error``
    CANCELLED = "cancelled"  # the person declined at the provider (``access_denied``)
    EXPIRED = "expired"  # not completed within its lifetime


class TokenResource(StrEnum):
    """What an access token is for. One Microsoft token serves one resource."""

    API = "api"  # Microsoft Graph / the Gmail API
    MAIL = "mail"  # IMAP and SMTP with XOAUTH2 (outlook.office.com / mail.google.com)


class GrantAuthorized(Event):
    subject_template = subjects.EVT_GRANT_AUTHORIZED

    agent_id: str
    provider: Provider
    email: str
    scopes: list[str] = Field(default_factory=list)


class GrantRefreshFailed(Event):
    subject_template = subjects.EVT_GRANT_REFRESH_FAILED

    agent_id: str
    provider: Provider
    error: ErrorInfo


class GrantRevoked(Event):
    subject_template = subjects.EVT_GRANT_REVOKED

    agent_id: str
    provider: Provider


class OAuthApp(BaseModel):
    """The OAuth app an agent's flows and refreshes use: its own, or its org's (``inherited``)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    provider: Provider
    client_id: str
    client_secret: WireSecret | None = None
    tenant_id: str | None = None  # Microsoft only; ``common`` when none is set
    inherited: bool = False


class GetOAuthApp(Request):
    """oauth-broker → config-api: the agent's app (with its secret) and the address it expects."""

    subject_template = subjects.RPC_OAUTH_APP_GET

    agent_id: str


class OAuthAppReply(Reply):
    agent_id: str
    app: OAuthApp | None = None
    expected_email: str | None = None  # the address saved with the config, when there is one
    error: ErrorInfo | None = None


class BeginOAuthFlow(Request):
    subject_template = subjects.RPC_OAUTH_FLOW_BEGIN

    agent_id: str
    provider: Provider
    ui_origin: str
    reauthorize: bool = False
    scopes: list[str] = Field(default_factory=list)


class OAuthFlowBegun(Reply):
    flow_id: str | None = None
    authorization_url: str | None = None
    expires_at: AwareDatetime | None = None
    error: ErrorInfo | None = None


class StartOAuthFlow(Request):
    """The popup opened the flow's start URL: bind the flow to this browser's cookie, once."""

    subject_template = subjects.RPC_OAUTH_FLOW_START
    subject_key = "flow_id"

    flow_id: str
    browser_binding: WireSecret


class OAuthFlowStarted(Reply):
    flow_id: str
    redirect_url: str | None = None  # the provider's authorization endpoint, with the request
    error: ErrorInfo | None = None


class CompleteOAuthFlow(Request):
    """The provider's redirect came back: finish the flow it belongs to."""

    subject_template = subjects.RPC_OAUTH_FLOW_COMPLETE
    subject_key = "flow_id"

    flow_id: str
    code: WireSecret | None = None
    state: str
    browser_binding: str
    error: str | None = None
    error_description: str | None = None
    iss: str | None = None  # RFC 9207: Google sends it, Microsoft does not


class OAuthFlowCompleted(Reply):
    flow_id: str
    agent_id: str | None = None
    status: str
    ui_origin: str | None = None
    email: str | None = None
    error: ErrorInfo | None = None


class GetOAuthFlow(Request):
    """A flow's status: the fallback when the popup's link to its opener is cut."""

    subject_template = subjects.RPC_OAUTH_FLOW_GET
    subject_key = "flow_id"

    flow_id: str


class OAuthFlowView(Reply):
    flow_id: str
    agent_id: str | None = None  # None: no such flow
    provider: Provider | None = None
    status: FlowStatus | None = None
    email: str | None = None
    expires_at: AwareDatetime | None = None
    error: ErrorInfo | None = None


class GetAccessToken(Request):
    """An agent's access token. ``refused``: the token this caller was given and the provider
    refused (401): the broker refreshes once if it still holds that token, else answers the one it
    holds now (another caller's refusal refreshed it already)."""

    subject_template = subjects.RPC_OAUTH_ACCESS_TOKEN_GET

    agent_id: str
    resource: TokenResource = TokenResource.API
    refused: WireSecret | None = None


class AccessTokenReply(Reply):
    access_token: WireSecret | None = None
    expires_at: AwareDatetime | None = None
    email: str | None = None
    provider: Provider | None = None
    scopes: list[str] = Field(default_factory=list)
    error: ErrorInfo | None = None


class RevokeGrant(Request):
    subject_template = subjects.RPC_OAUTH_GRANT_REVOKE

    agent_id: str


class GrantRevocationReply(Reply):
    revoked: bool
    revoked_at_provider: bool = False  # Microsoft has no per-grant revocation: tokens erased only
    note: str | None = None
    error: ErrorInfo | None = None
