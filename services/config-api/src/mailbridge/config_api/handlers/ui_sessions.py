"""The Email tab's sessions: a link made for one agent by a caller with an API key, exchanged once
by the page for a cookie secret, then found by that secret, renewed while the page is open, and
ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mailbridge.config_api.domain.api_keys import Principal, hash_secret
from mailbridge.config_api.domain.ui_sessions import (
    LINK_REFUSED,
    SESSION_EXPIRED,
    SESSION_UNKNOWN,
    UiSession,
    UiSessionLink,
    UiSessionView,
    csrf_token_of,
    link_url,
    new_secret,
)
from mailbridge.config_api.handlers.agents import load_agent
from mailbridge.config_api.ports import ConfigRepository, UiSessionStore
from mailbridge.shared.clock import Clock
from mailbridge.shared.errors import MailbridgeError
from mailbridge.shared.ids import new_id


@dataclass(frozen=True)
class OpenSession:
    """A live session and the cookie secret it was found by (or exchanged for)."""

    secret: str
    session: UiSession


async def open_link(
    agent_id: str,
    *,
    repo: ConfigRepository,
    sessions: UiSessionStore,
    principal: Principal,
    clock: Clock,
    lifetime: timedelta,
    base_url: str,
) -> UiSessionLink:
    """A one-time link to the agent's Email tab (404 for an agent the caller may not see)."""
    agent, _, _ = await load_agent(agent_id, repo, principal)
    token, now = new_secret(), clock.now()
    session = UiSession(
        session_id=new_id("uis"), agent_id=agent_id, org_id=agent.org_id,
        expires_at=now + lifetime, exchanged=False, created_at=now,
    )  # fmt: skip
    await sessions.create(session, hash_secret(token))
    return UiSessionLink(url=link_url(base_url, agent_id, token), expires_at=session.expires_at)


async def exchange_link(
    token: str, *, repo: ConfigRepository, sessions: UiSessionStore, clock: Clock
) -> tuple[OpenSession, UiSessionView]:
    """Spend the link's token for a new cookie secret; 401 for a token used, expired or unknown."""
    secret = new_secret()
    session = await sessions.exchange(hash_secret(token), hash_secret(secret), clock.now())
    if session is None:
        raise MailbridgeError.explained(LINK_REFUSED)
    opened = OpenSession(secret, session)
    return opened, await view_of(opened, repo=repo)


async def view_of(opened: OpenSession, *, repo: ConfigRepository) -> UiSessionView:
    """What the page is told of its session: the agent (404 once out of the session's reach, as
    when it moved to another org), the end, and the CSRF token."""
    session = opened.session
    agent, _, _ = await load_agent(session.agent_id, repo, session.principal)
    return UiSessionView(
        agent_id=session.agent_id,
        agent_name=agent.name,
        expires_at=session.expires_at,
        csrf_token=csrf_token_of(opened.secret),
    )


async def find_session(secret: str, *, sessions: UiSessionStore, clock: Clock) -> OpenSession:
    """The live session of a cookie secret; 401 saying so when it expired or is unknown."""
    session = await sessions.find(hash_secret(secret))
    if session is None:
        raise MailbridgeError.explained(SESSION_UNKNOWN)
    if session.expires_at <= clock.now():
        raise MailbridgeError.explained(SESSION_EXPIRED)
    return OpenSession(secret, session)


async def renew_session(
    opened: OpenSession, *, sessions: UiSessionStore, clock: Clock, lifetime: timedelta
) -> OpenSession:
    """The session, ending ``lifetime`` from now; 401 when it expired or ended meanwhile."""
    now = clock.now()
    renewed = await sessions.renew(opened.session.session_id, now + lifetime, now)
    if renewed is None:
        raise MailbridgeError.explained(SESSION_EXPIRED)
    return OpenSession(opened.secret, renewed)


async def end_session(opened: OpenSession, *, sessions: UiSessionStore) -> None:
    await sessions.end(opened.session.session_id)
