"""Token introspection (RFC 7662) for the local Dovecot's oauth2 passdb: which sandbox access
tokens may log in to IMAP and SMTP with XOAUTH2.

``POST /_sandbox/introspect`` with the form ``token=…`` answers ``{"active": true, "email",
"scope", "exp", "client_id"}`` for a live token that carries a mail scope, as Gmail and Exchange
Online would accept it: Google's ``https://mail.google.com/``; a Microsoft token for the
``https://outlook.office.com`` resource with ``IMAP.AccessAsUser.All`` or ``SMTP.Send``. Any
other token (unknown, expired, revoked, a Graph token, a Gmail API-only token) is
``{"active": false}``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbridge.sandbox.microsoft import OUTLOOK
from mailbridge.sandbox.state import AccessToken, SandboxState
from mailbridge.sandbox.web import first, read_form

GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
OUTLOOK_MAIL_SCOPES = frozenset({f"{OUTLOOK}/IMAP.AccessAsUser.All", f"{OUTLOOK}/SMTP.Send"})
INACTIVE = {"active": False}


def opens_mail(token: AccessToken) -> bool:
    """A token IMAP and SMTP accept: its provider's mail scope, for the mail resource."""
    if token.provider == "google":
        return GOOGLE_MAIL_SCOPE in token.scopes
    return token.resource == OUTLOOK and not OUTLOOK_MAIL_SCOPES.isdisjoint(token.scopes)


class Introspection:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def _live(self, token: str) -> AccessToken | None:
        google, microsoft = self.state.google, self.state.microsoft
        return google.live_access_token(token) or microsoft.live_access_token(token)

    async def introspect(self, request: Request) -> Response:
        token = first(await read_form(request), "token")
        found = self._live(token) if token else None
        if found is None or not opens_mail(found):
            return JSONResponse(INACTIVE)
        answer = {
            "active": True,
            "email": found.email,
            "scope": " ".join(found.scopes),
            "exp": int(found.expires_at),
            "client_id": found.grant_key[1],
        }
        return JSONResponse(answer)

    def routes(self) -> list[Route]:
        return [Route("/_sandbox/introspect", self.introspect, methods=["POST"])]
