"""The OAuth popup's pages, opened by a browser without an API key: ``start`` binds the flow to
this browser (a cookie) and redirects to the provider; ``callback``, the redirect URI registered
at both providers, completes it and answers the page of ``oauth_page``.

Both are left out of the OpenAPI document (``include_in_schema=False``): they answer HTML pages
and redirects for a browser, not JSON for a client, so the document's rules (problem+json errors,
an example per answer) and the Schemathesis run over it do not apply to them.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Literal, TypedDict

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse

from mailbridge.config_api.domain.oauth import ProviderRedirect, cookie_name
from mailbridge.config_api.entrypoints.http import oauth_page
from mailbridge.config_api.entrypoints.http.deps import OAuthDep, SettingsDep, resource_router
from mailbridge.config_api.handlers import oauth_flows
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.errors import MailbridgeError

COOKIE_PATH = "/api/engine/oauth"
# the provider's redirect carries parameters of its own beside code and state
router = resource_router(prefix=COOKIE_PATH, include_in_schema=False, only_declared_query=False)


@router.get("/start")
async def start(broker: OAuthDep, settings: SettingsDep, flow: str = "") -> Response:
    binding = secrets.token_urlsafe(32)
    try:
        redirect_url = await oauth_flows.start_flow(flow, binding, broker=broker)
    except MailbridgeError as exc:
        return oauth_page.refused(flow, exc)
    response = RedirectResponse(redirect_url, status_code=302)
    response.set_cookie(
        cookie_name(flow), binding, max_age=settings.oauth_flow_lifetime_seconds,
        **_cookie_attributes(settings),
    )  # fmt: skip
    return response


@router.get("/callback")
async def callback(
    request: Request,
    redirect: Annotated[ProviderRedirect, Query()],
    broker: OAuthDep,
    settings: SettingsDep,
) -> Response:
    try:
        completed = await oauth_flows.complete_flow(redirect, request.cookies, broker=broker)
    except MailbridgeError as exc:  # the broker did not answer: the cookie stays, for a retry
        return oauth_page.refused(redirect.flow_id, exc)
    page = oauth_page.finished(completed, settings.allowed_ui_origins())
    if redirect.flow_id is not None:  # the binding is used up, whatever the broker said
        page.delete_cookie(cookie_name(redirect.flow_id), **_cookie_attributes(settings))
    return page


class _CookieAttributes(TypedDict):
    path: str
    secure: bool
    httponly: bool
    samesite: Literal["lax"]


def _cookie_attributes(settings: ConfigApiSettings) -> _CookieAttributes:
    """The binding cookie reaches these two pages only, never a script; sent on the provider's
    redirect back (a top-level GET: SameSite=Lax), over HTTPS only where mailbridge is served so."""
    secure = settings.public_base_url.lower().startswith("https://")
    return {"path": COOKIE_PATH, "secure": secure, "httponly": True, "samesite": "lax"}
