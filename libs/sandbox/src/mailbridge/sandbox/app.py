"""The sandbox as one ASGI app: both look-alikes, their mail APIs and the admin levers."""

from __future__ import annotations

from starlette.applications import Starlette

from mailbridge.sandbox.admin import Admin, BadRequest, bad_request
from mailbridge.sandbox.admin_mail import MailAdmin
from mailbridge.sandbox.delivery import PostOffice
from mailbridge.sandbox.gmail import GmailApi
from mailbridge.sandbox.google import GoogleFlow
from mailbridge.sandbox.graph import GraphApi
from mailbridge.sandbox.introspection import Introspection
from mailbridge.sandbox.microsoft import MicrosoftFlow
from mailbridge.sandbox.state import SandboxState


def create_app(public_url: str) -> Starlette:
    """``public_url`` is where clients reach the sandbox (issuers and endpoints name it)."""
    state = SandboxState.create(public_url)
    post = PostOffice(state.google, state.microsoft)
    routes = [
        *GoogleFlow(state.google, state.public_url).routes(),
        *MicrosoftFlow(state.microsoft, state.public_url).routes(),
        *GmailApi(state.google, post).routes(),
        *GraphApi(state.microsoft, post, state.public_url).routes(),
        *Admin(state).routes(),
        *MailAdmin(state, post).routes(),
        *Introspection(state).routes(),
    ]
    handlers = {BadRequest: bad_request, KeyError: bad_request, ValueError: bad_request}
    return Starlette(routes=routes, exception_handlers=handlers)
