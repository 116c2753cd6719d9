"""The Email tab's sessions (UI sessions), as pure rules: a browser works with one agent's mailbox
without ever holding an API key.

The platform's backend, holding a key, asks for a link whose URL *fragment* carries a one-time
token (a fragment never reaches a server's log or a Referer header). The page exchanges the token,
once, for a cookie holding a new secret, and is told a CSRF token derived from that secret (so
nothing more is stored). Only SHA-256s of the token and the secret are kept: both are 256 random
bits, as an API key's secret is. A session's principal is scoped to its one agent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.shared.errors import ErrorCode, ErrorInfo

COOKIE = "mb_ui_session"
CSRF_HEADER = "X-CSRF-Token"
_CSRF_PURPOSE = b"mailbridge ui-session csrf"
TOKEN_PATTERN = r"^[A-Za-z0-9_\-]{1,200}$"  # what secrets.token_urlsafe makes
KEPT_AFTER_END = timedelta(days=1)  # an ended session says "expired" that long, then is dropped

_REOPEN = "Reopen the Email tab from the platform: it opens a new session."
LINK_REFUSED = ErrorInfo.of(ErrorCode.UNAUTHORIZED).saying(
    "This Email tab link was used already or has expired: reopen the Email tab from the platform.",
    _REOPEN,
)
SESSION_EXPIRED = ErrorInfo.of(ErrorCode.UNAUTHORIZED).saying(
    "This Email tab session has expired: reopen the Email tab from the platform.", _REOPEN
)
SESSION_UNKNOWN = ErrorInfo.of(ErrorCode.UNAUTHORIZED).saying(
    # a browser drops the cookie when the session ends, so an expired session mostly looks so
    "This Email tab session has expired or was ended: reopen the Email tab from the platform.",
    _REOPEN,
)
CSRF_MISSING = ErrorInfo.of(ErrorCode.UNAUTHORIZED).saying(
    f"This request lacks the session's {CSRF_HEADER} header.",
    f"Send the `csrf_token` of the session as the {CSRF_HEADER} header on every request but GET.",
)
FOREIGN_ORIGIN = ErrorInfo.of(ErrorCode.UNAUTHORIZED).saying(
    "This request came from another origin than mailbridge's own.",
    "Use the Email tab served by mailbridge; set MAILBRIDGE_PUBLIC_BASE_URL to the address "
    "browsers open it at.",
)


@dataclass(frozen=True)
class UiSession:
    session_id: str
    agent_id: str
    org_id: str
    expires_at: datetime
    exchanged: bool
    created_at: datetime

    @property
    def principal(self) -> Principal:
        """Who the session lets in: its agent's org, and that one agent only."""
        return Principal(
            f"ui-session:{self.session_id}",
            self.org_id,
            agent_id=self.agent_id,
            expires_at=self.expires_at,
        )

    def seconds_left(self, now: datetime) -> int:
        return max(0, int((self.expires_at - now).total_seconds()))


def new_secret() -> str:
    """A link token or a cookie secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def csrf_token_of(secret: str) -> str:
    """The CSRF token bound to a cookie secret: only who holds the secret can make it, and the
    secret itself (an HttpOnly cookie) is out of every script's reach."""
    digest = hmac.new(secret.encode(), _CSRF_PURPOSE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_matches(secret: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(csrf_token_of(secret), given)


def link_url(base_url: str, agent_id: str, token: str) -> str:
    """The agent's Email tab with the token in the fragment, which a browser never sends."""
    page = f"/ui/agents/{quote(agent_id, safe=':@+=')}/email"
    return f"{base_url.rstrip('/')}{page}#session={token}"


class UiSessionLink(BaseModel):
    """``POST /bridge/agents/{agent_id}/ui-sessions``: the link to hand to a browser."""

    url: str = Field(
        description="the agent's Email tab; its fragment holds a one-time token, which the page "
        "exchanges for a session cookie (a fragment is never sent to a server)"
    )
    expires_at: AwareDatetime = Field(description="the link is good once, until then")


class ExchangeIn(BaseModel):
    """``POST /ui/sessions/exchange``: the token of the link's fragment."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"token": "q8Xl2v0VJcB3T9yW1nRkS4dPzA6uE7hMfGiYwQ5oL_c"}]},
    )

    token: str = Field(pattern=TOKEN_PATTERN, description="`session` of the link's fragment")


class UiSessionView(BaseModel):
    """The session the page works with: whose Email tab, until when, and its CSRF token."""

    agent_id: str
    # nullable with a default, not required: FastAPI drops the nulls of documented examples
    agent_name: str | None = Field(default=None, description="the agent's name, for the header")
    expires_at: AwareDatetime = Field(description="renew before then while the page is open")
    csrf_token: str = Field(description=f"send as `{CSRF_HEADER}` on every request but GET")


class UiSessionRenewed(BaseModel):
    """``POST /ui/sessions/renew``: the session's new end."""

    expires_at: AwareDatetime
