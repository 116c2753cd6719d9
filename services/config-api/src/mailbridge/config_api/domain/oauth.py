"""OAuth sign-ins as config-api shows them: what ``authorize`` takes and answers, which UI origin
a flow reports to, the provider's redirect to the callback, a flow's status, a disconnect's
revocation. The flows themselves are the oauth-broker's (SPEC §2)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr

from mailbridge.config_api.domain.email_config import EmailConfigView
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import (
    FlowStatus,
    GrantRevocationReply,
    OAuthFlowBegun,
    OAuthFlowView,
    Provider,
)
from mailbridge.shared.plain_text import PlainTextModel
from mailbridge.shared.settings import PublicAddress, origin_of

FLOW_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,200}$"
_FLOW_ID = re.compile(FLOW_ID_PATTERN)
COOKIE_PREFIX = "mb_oauth_"
UNKNOWN_FLOW = ErrorInfo.of(ErrorCode.NOT_FOUND).saying(
    "No such sign-in.", "Start again from the Email tab: click Authorize."
)

# RFC 6749 §3.3: a scope token is printable ASCII but space, `"` and `\`
Scope = Annotated[str, Field(min_length=1, max_length=300, pattern=r"^[!#-\[\]-~]+$")]


class AuthorizeIn(PlainTextModel):
    """``POST …/email-config/authorize``; the body may be omitted."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{}, {"reauthorize": True, "scopes": ["https://mail.google.com/"]}]
        },
    )

    reauthorize: bool = Field(
        default=False,
        description="sign in again for more scopes (Google's Re-authorize, Update Scopes); the "
        "current grant keeps working until the new one is complete",
    )
    scopes: list[Scope] = Field(
        default_factory=list, max_length=20, description="asked for beyond the sign-in's own"
    )


class AuthorizationBegun(BaseModel):
    """A flow begun: open ``authorization_url`` in a popup before ``expires_at``."""

    authorization_url: str = Field(description="config-api's start URL, to open in a popup")
    flow_id: str = Field(description="for `GET /bridge/oauth/flows/{flow_id}`")
    expires_at: AwareDatetime

    @classmethod
    def of(cls, begun: OAuthFlowBegun) -> AuthorizationBegun:
        return cls.model_validate(begun.model_dump(exclude={"error"}))


class FlowView(BaseModel):
    """``GET /bridge/oauth/flows/{flow_id}``: where a sign-in stands."""

    flow_id: str
    agent_id: str
    provider: Provider
    status: FlowStatus
    # nullable with a default, not required: FastAPI drops the nulls of documented examples
    email: str | None = Field(default=None, description="the address signed in, once completed")
    expires_at: AwareDatetime
    error: ErrorInfo | None = Field(default=None, description="why it failed or was cancelled")

    @classmethod
    def of(cls, view: OAuthFlowView) -> FlowView:
        return cls.model_validate(view.model_dump())


class Revocation(BaseModel):
    """What disconnecting did to the agent's OAuth grant."""

    revoked: bool = Field(description="mailbridge holds no token of the grant any more")
    revoked_at_provider: bool = Field(
        default=False, description="the provider revoked it too (Google; Microsoft cannot)"
    )
    note: str | None = None

    @classmethod
    def of(cls, reply: GrantRevocationReply | None) -> Revocation:
        if reply is None:
            return cls(revoked=False, note=_UNANSWERED_REVOCATION)
        note = reply.note or (reply.error.message if reply.error else None)
        return cls(revoked=reply.revoked, revoked_at_provider=reply.revoked_at_provider, note=note)


_UNANSWERED_REVOCATION = (
    "The oauth-broker did not answer, so the grant was not revoked; remove mailbridge's access "
    "in the account's security settings."
)


class DisconnectedView(EmailConfigView):
    """``DELETE …/email-config``: the agent, now ``not_connected``, and what became of its grant."""

    revocation: Revocation | None = Field(
        default=None, description="for a Microsoft or Google config; null for IMAP"
    )


class ProviderRedirect(BaseModel):
    """The query of the provider's redirect to the callback (RFC 6749 §4.1.2, RFC 9207 ``iss``).
    Providers add parameters of their own (``scope``, ``session_state``): ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: SecretStr | None = Field(default=None, max_length=4096)
    state: str | None = Field(default=None, max_length=512)
    iss: str | None = Field(default=None, max_length=2048)
    error: str | None = Field(default=None, max_length=256)
    error_description: str | None = Field(default=None, max_length=2048)

    @property
    def flow_id(self) -> str | None:
        """The flow the state names (``{flow_id}.{secret}``), None when it names none."""
        flow_id = (self.state or "").partition(".")[0]
        return flow_id if is_flow_id(flow_id) else None


def is_flow_id(value: str | None) -> bool:
    return value is not None and _FLOW_ID.match(value) is not None


def cookie_name(flow_id: str) -> str:
    """The popup's browser-binding cookie of one flow: one each, so two popups never clash."""
    return f"{COOKIE_PREFIX}{flow_id}"


def ui_origin_of(origin: str | None, referer: str | None, address: PublicAddress) -> str:
    """The origin a flow's callback page posts its result to: the request's ``Origin``, else
    its ``Referer``'s, else the first configured UI origin (or the public base URL's). One that
    is not in ``MAILBRIDGE_UI_ORIGINS`` is refused: the page would post to it."""
    given = origin or referer
    chosen = origin_of(given) if given else _default_ui_origin(address)
    if chosen not in address.allowed_ui_origins():
        raise MailbridgeError.explained(_unlisted(chosen))
    return chosen


def _default_ui_origin(address: PublicAddress) -> str:
    listed = [origin.strip().rstrip("/") for origin in address.ui_origins.split(",")]
    return next((origin for origin in listed if origin), origin_of(address.public_base_url))


def _unlisted(origin: str) -> ErrorInfo:
    shown = origin[:200] if origin != "://" else "null"  # "://": no scheme nor host (`null`)
    return ErrorInfo.of(ErrorCode.INVALID_INPUT).saying(
        f"The origin {shown} may not receive sign-in results.",
        "Add it to MAILBRIDGE_UI_ORIGINS (comma-separated) and restart config-api.",
    )
