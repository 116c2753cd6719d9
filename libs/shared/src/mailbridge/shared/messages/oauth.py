"""Events and requests of the oauth-broker."""

from __future__ import annotations

from pydantic import AwareDatetime, Field

from mailbridge.shared import subjects
from mailbridge.shared.errors import ErrorInfo
from mailbridge.shared.messages.base import Event, Reply, Request, WireSecret
from mailbridge.shared.messages.config import Provider


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


class CompleteOAuthFlow(Request):
    """The provider's redirect came back: finish the flow it belongs to."""

    subject_template = subjects.RPC_OAUTH_FLOW_COMPLETE
    subject_key = "flow_id"

    flow_id: str
    code: WireSecret | None = None
    state: str
    browser_binding: str
    error: str | None = None


class OAuthFlowCompleted(Reply):
    flow_id: str
    agent_id: str | None = None
    status: str
    ui_origin: str | None = None
    error: ErrorInfo | None = None


class GetAccessToken(Request):
    subject_template = subjects.RPC_OAUTH_ACCESS_TOKEN_GET

    agent_id: str


class AccessTokenReply(Reply):
    access_token: WireSecret | None = None
    expires_at: AwareDatetime | None = None
    email: str | None = None
    error: ErrorInfo | None = None


class RevokeGrant(Request):
    subject_template = subjects.RPC_OAUTH_GRANT_REVOKE

    agent_id: str


class GrantRevocationReply(Reply):
    revoked: bool
    error: ErrorInfo | None = None
