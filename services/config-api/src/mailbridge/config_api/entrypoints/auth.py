"""Who is calling: a Bearer API key on every ``/bridge`` route (401 without a valid one), and on
the routes the Email tab uses, its session cookie instead (``domain/ui_sessions.py``).

- ``Caller``: a Bearer key, nothing else; a session cookie is no key (401).
- ``CallerOrSession``: a Bearer key when one is sent, unchanged; else the Email tab's session,
  scoped to its one agent. A session's request other than a GET must carry the session's
  ``X-CSRF-Token`` and, when it has an ``Origin``, come from mailbridge's own (403 otherwise).
- ``EmailTabSession``: the session alone, checked the same way (the ``/ui/sessions`` routes).
- ``CallerOrAgentToken``: a Bearer key, or an agent token (``domain/agent_tokens.py``) scoped to
  its one agent: the agent's mail and send routes. Anywhere else a valid agent token is 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from mailbridge.config_api.container import Container
from mailbridge.config_api.domain.agent_tokens import (
    OUT_OF_SCOPE,
    is_agent_token,
    looks_like_agent_token,
)
from mailbridge.config_api.domain.api_keys import Principal, parse_token, verify
from mailbridge.config_api.domain.errors import Forbidden
from mailbridge.config_api.domain.ui_sessions import (
    COOKIE,
    CSRF_HEADER,
    CSRF_MISSING,
    FOREIGN_ORIGIN,
    SESSION_UNKNOWN,
    csrf_matches,
)
from mailbridge.config_api.handlers import agent_tokens
from mailbridge.config_api.handlers.ui_sessions import OpenSession, find_session
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.settings import origin_of

bearer = HTTPBearer(
    auto_error=False,
    description="an operator key or an org key; on an agent's mail and send routes, also an "
    "agent token of that agent",
)
session_cookie = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    scheme_name="EmailTabSession",
    description=f"The Email tab's session, set by `POST /ui/sessions/exchange`; accepted on the "
    f"routes the tab uses, for its one agent (any other is 404). Every request but a GET also "
    f"needs the session's `{CSRF_HEADER}` header, and an `Origin`, when sent, must be "
    f"mailbridge's own (403 otherwise).",
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _container(request: Request) -> Container:
    found: Container = request.app.state.container
    return found


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """An API key (401 without a valid one); a valid agent token does not reach here (403)."""
    principal = await authenticate_key_or_agent_token(request, credentials)
    if is_agent_token(principal):
        raise Forbidden(OUT_OF_SCOPE)
    return principal


async def authenticate_key_or_agent_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    text, c = (credentials.credentials if credentials else ""), _container(request)
    if looks_like_agent_token(text):
        principal = await agent_tokens.principal_of(text, store=c.agent_tokens)
    else:
        parsed = parse_token(text)
        principal = verify(await c.keys.find(parsed[0]), parsed[1]) if parsed else None
    if principal is None:
        raise MailbridgeError(ErrorCode.UNAUTHORIZED)
    return principal


async def same_origin(request: Request) -> None:
    """403 for a request whose ``Origin`` is another than the public base URL's."""
    origin = request.headers.get("origin")
    public = origin_of(_container(request).settings.public_base_url)
    if origin is not None and origin_of(origin) != public:
        raise Forbidden(FOREIGN_ORIGIN)


async def current_session(
    request: Request, secret: Annotated[str | None, Depends(session_cookie)]
) -> OpenSession:
    """The live session of the cookie (401 saying why not); a change also needs its CSRF token
    and mailbridge's own origin (403)."""
    if not secret:
        raise MailbridgeError.explained(SESSION_UNKNOWN)
    c = _container(request)
    opened = await find_session(secret, sessions=c.ui_sessions, clock=c.clock)
    if request.method not in SAFE_METHODS:
        await same_origin(request)
        if not csrf_matches(secret, request.headers.get(CSRF_HEADER)):
            raise Forbidden(CSRF_MISSING)
    return opened


async def authenticate_caller_or_session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    secret: Annotated[str | None, Depends(session_cookie)],
) -> Principal:
    if credentials is not None or not secret:
        return await authenticate(request, credentials)
    return (await current_session(request, secret)).session.principal


Caller = Annotated[Principal, Depends(authenticate)]
CallerOrSession = Annotated[Principal, Depends(authenticate_caller_or_session)]
EmailTabSession = Annotated[OpenSession, Depends(current_session)]
CallerOrAgentToken = Annotated[Principal, Depends(authenticate_key_or_agent_token)]
