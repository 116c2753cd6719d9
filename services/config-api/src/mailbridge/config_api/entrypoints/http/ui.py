"""The reference Email tab (SPEC §8): one static page with its script and style, no build step.

The page is the same for every agent (it reads the agent id from its own path), so nothing of a
request is ever written into it. It holds no data until its script opens the UI session from the
URL's fragment and calls the documented /bridge API. Left out of the OpenAPI document: these are
files for a browser, not JSON for a client.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import Path
from fastapi.responses import Response

from mailbridge.config_api.entrypoints.http.deps import resource_router

# a page a browser opens: a link may carry what its sender added (utm_…, a fragment's copy)
router = resource_router(prefix="/ui", include_in_schema=False, only_declared_query=False)

ASSETS = {"email.js": "text/javascript", "email.css": "text/css"}
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
AgentInPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-:@+=.]{1,200}$")]


def _asset(name: str) -> bytes:
    return resources.files("mailbridge.config_api.ui").joinpath(name).read_bytes()


@router.get("/agents/{agent_id}/email")
async def email_tab(agent_id: AgentInPath) -> Response:
    return Response(_asset("email.html"), media_type="text/html", headers=PAGE_HEADERS)


@router.get("/static/{name}")
async def static_asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return Response(_asset(name), media_type=ASSETS[name], headers=headers)
