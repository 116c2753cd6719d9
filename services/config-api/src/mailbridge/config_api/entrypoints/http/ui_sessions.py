"""The Email tab's sessions: the link for one agent, which a platform's backend asks for with its
API key; and the page's own calls, which hold no key: exchange the link's one-time token for the
session cookie, read the session, renew it while the page is open, end it.

The cookie ``mb_ui_session`` is HttpOnly, SameSite=Strict, Path=/, Secure when mailbridge is
served over HTTPS, and lives as long as the session (its Max-Age follows each renewal). Every
answer here is ``Cache-Control: no-store``: it holds the session's CSRF token.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal, TypedDict

from fastapi import Depends, Response

from mailbridge.config_api.domain.ui_sessions import (
    COOKIE,
    ExchangeIn,
    UiSessionLink,
    UiSessionRenewed,
    UiSessionView,
)
from mailbridge.config_api.entrypoints import examples
from mailbridge.config_api.entrypoints.auth import Caller, EmailTabSession, same_origin
from mailbridge.config_api.entrypoints.examples import json_answer
from mailbridge.config_api.entrypoints.http.deps import (
    AgentId,
    ClockDep,
    RepoDep,
    SettingsDep,
    UiSessionsDep,
    resource_router,
)
from mailbridge.config_api.entrypoints.problems import responses as problems
from mailbridge.config_api.handlers import ui_sessions
from mailbridge.config_api.handlers.ui_sessions import OpenSession
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.clock import Clock


async def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


router = resource_router(tags=["ui-sessions"], dependencies=[Depends(_no_store)])
SESSION_ANSWER = json_answer(
    "The session: its agent, its end and its CSRF token.", examples.UI_SESSION
)


def _lifetime(settings: ConfigApiSettings) -> timedelta:
    return timedelta(minutes=settings.ui_session_minutes)


class _CookieAttributes(TypedDict):
    path: str
    secure: bool
    httponly: bool
    samesite: Literal["strict"]


def _cookie_attributes(settings: ConfigApiSettings) -> _CookieAttributes:
    """Out of every script's reach, sent only by mailbridge's own pages, over HTTPS where
    mailbridge is served so."""
    secure = settings.public_base_url.lower().startswith("https://")
    return {"path": "/", "secure": secure, "httponly": True, "samesite": "strict"}


def _set_cookie(
    response: Response, opened: OpenSession, clock: Clock, settings: ConfigApiSettings
) -> None:
    max_age = opened.session.seconds_left(clock.now())
    response.set_cookie(COOKIE, opened.secret, max_age=max_age, **_cookie_attributes(settings))


@router.post(
    "/bridge/agents/{agent_id}/ui-sessions",
    status_code=201,
    summary="Open the Email tab for an agent, with no API key in the browser",
    responses={
        201: json_answer("A one-time link to the agent's Email tab.", examples.UI_SESSION_LINK),
        **problems(401, 404, 422),
    },
)
async def create_ui_session(
    agent_id: AgentId,
    repo: RepoDep,
    sessions: UiSessionsDep,
    clock: ClockDep,
    settings: SettingsDep,
    caller: Caller,
) -> UiSessionLink:
    """For a platform's backend: a link to open in a browser, good once until `expires_at`
    (`MAILBRIDGE_UI_SESSION_MINUTES`, 15 by default). Its token is in the URL's fragment, so it
    stays out of server logs and Referer headers. The session it opens reaches this one agent."""
    return await ui_sessions.open_link(
        agent_id, repo=repo, sessions=sessions, principal=caller, clock=clock,
        lifetime=_lifetime(settings), base_url=settings.public_base_url,
    )  # fmt: skip


@router.post(
    "/ui/sessions/exchange",
    summary="Exchange an Email tab link's token for the session cookie",
    dependencies=[Depends(same_origin)],
    responses={200: SESSION_ANSWER, **problems(401, 403, 404, 422)},
)
async def exchange_ui_session(
    body: ExchangeIn,
    repo: RepoDep,
    sessions: UiSessionsDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
) -> UiSessionView:
    """The page's first call, with the `session` of its URL's fragment: sets the cookie
    `mb_ui_session` (a new secret: the link's token is spent, a second exchange is 401) and
    answers the CSRF token to send as `X-CSRF-Token` on every request but a GET."""
    opened, view = await ui_sessions.exchange_link(
        body.token, repo=repo, sessions=sessions, clock=clock
    )
    _set_cookie(response, opened, clock, settings)
    return view


@router.get(
    "/ui/sessions/current",
    summary="The Email tab's session, for a page reloaded",
    responses={200: SESSION_ANSWER, **problems(401, 404)},
)
async def get_ui_session(session: EmailTabSession, repo: RepoDep) -> UiSessionView:
    """The session of the cookie `mb_ui_session`, with its CSRF token again."""
    return await ui_sessions.view_of(session, repo=repo)


@router.post(
    "/ui/sessions/renew",
    summary="Renew the Email tab's session",
    responses={
        200: json_answer("The session's new end.", examples.UI_SESSION_RENEWED),
        **problems(401, 403),
    },
)
async def renew_ui_session(
    session: EmailTabSession,
    sessions: UiSessionsDep,
    clock: ClockDep,
    settings: SettingsDep,
    response: Response,
) -> UiSessionRenewed:
    """Moves the session's end to a whole lifetime from now, and the cookie's with it; the open
    page calls it every few minutes (cookie and `X-CSRF-Token`)."""
    renewed = await ui_sessions.renew_session(
        session, sessions=sessions, clock=clock, lifetime=_lifetime(settings)
    )
    _set_cookie(response, renewed, clock, settings)
    return UiSessionRenewed(expires_at=renewed.session.expires_at)


@router.delete(
    "/ui/sessions/current",
    status_code=204,
    summary="End the Email tab's session",
    responses={**problems(401, 403)},
)
async def end_ui_session(
    session: EmailTabSession, sessions: UiSessionsDep, settings: SettingsDep, response: Response
) -> None:
    """Ends the session and deletes its cookie (cookie and `X-CSRF-Token`)."""
    await ui_sessions.end_session(session, sessions=sessions)
    response.delete_cookie(COOKIE, **_cookie_attributes(settings))
