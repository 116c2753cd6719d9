"""The mailbox levers under ``/_sandbox/``: drop mail into an inbox, look into a mailbox, and
read what the mail APIs were asked and how many requests of a user overlapped."""

from __future__ import annotations

import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbridge.sandbox import mime
from mailbridge.sandbox.admin import BadRequest, known_email
from mailbridge.sandbox.delivery import MESSAGE_ID_DOMAINS, PostOffice
from mailbridge.sandbox.mailstore import Folder, StoredMessage
from mailbridge.sandbox.state import PROVIDERS, ProviderState, SandboxState, User

FOLDERS: dict[str, Folder] = {"inbox": "inbox", "sent": "sent"}


class MailAdmin:
    def __init__(self, state: SandboxState, post: PostOffice) -> None:
        self.state = state
        self.post = post

    def _provider(self, name: str | None) -> ProviderState:
        if name not in PROVIDERS:
            raise BadRequest(f"provider must be one of {PROVIDERS}")
        return self.state.provider(name)

    def _user(self, provider: ProviderState, login: str) -> User:
        user = provider.find_user(known_email(provider, login))
        if user is None:
            raise BadRequest(f"no user {login!r} at {provider.name}")
        return user

    async def deliver(self, request: Request) -> Response:
        """Mail from outside lands in the inbox: ``raw`` (base64) as given, or a message
        built from ``from``, ``subject``, ``text``, ``message_id``, ``in_reply_to``."""
        body = await request.json()
        if not isinstance(body, dict):
            raise BadRequest("a JSON object is expected")
        provider = self._provider(body.get("provider"))
        user = self._user(provider, str(body.get("email", "")))
        raw = base64.b64decode(body["raw"]) if body.get("raw") else _built(user, body)
        raw, _ = mime.with_message_id(raw, MESSAGE_ID_DOMAINS[provider.name])
        stored = provider.mailbox(user).add(mime.without_header(raw, "bcc"), "inbox", unread=True)
        return JSONResponse({"id": stored.id}, status_code=201)

    async def mailbox(self, request: Request) -> Response:
        params = request.query_params
        provider = self._provider(params.get("provider"))
        user = self._user(provider, params.get("email", ""))
        folder = FOLDERS.get(params.get("folder", "inbox"))
        if folder is None:
            raise BadRequest("folder must be inbox or sent")
        found = provider.mailbox(user).in_folder(folder)
        return JSONResponse([_described(provider.name, m) for m in found])

    async def requests(self, request: Request) -> Response:
        provider = self._provider(request.query_params.get("provider"))
        return JSONResponse(list(provider.traffic.log))

    async def concurrency(self, request: Request) -> Response:
        provider = self._provider(request.query_params.get("provider"))
        email = known_email(provider, request.query_params.get("email", ""))
        return JSONResponse({"max_in_flight": provider.traffic.max_in_flight.get(email, 0)})

    async def reset_requests(self, request: Request) -> Response:
        for name in PROVIDERS:
            self.state.provider(name).traffic.reset()
        return JSONResponse({})

    def routes(self) -> list[Route]:
        return [
            Route("/_sandbox/mail/deliver", self.deliver, methods=["POST"]),
            Route("/_sandbox/mail", self.mailbox, methods=["GET"]),
            Route("/_sandbox/requests", self.requests, methods=["GET"]),
            Route("/_sandbox/requests/reset", self.reset_requests, methods=["POST"]),
            Route("/_sandbox/concurrency", self.concurrency, methods=["GET"]),
        ]


def _built(user: User, body: dict[str, Any]) -> bytes:
    headers = {"Message-ID": str(body["message_id"])} if body.get("message_id") else {}
    if body.get("in_reply_to"):
        headers |= {"In-Reply-To": str(body["in_reply_to"]), "References": str(body["in_reply_to"])}
    return mime.build(
        str(body.get("from") or "someone@outside.test"),
        [user.mail or user.email],
        str(body.get("subject") or "Hello"),
        str(body.get("text") or "Hello from outside."),
        headers=headers,
    )


def _described(provider: str, message: StoredMessage) -> dict[str, Any]:
    envelope = message.envelope
    described: dict[str, Any] = {
        "id": message.id,
        "thread_id": message.thread_id,
        "message_id": envelope.message_id,
        "subject": envelope.subject,
        "from": envelope.sender,
        "to": envelope.to,
        "in_reply_to": envelope.in_reply_to,
        "references": envelope.references,
        "raw_b64": base64.b64encode(message.raw).decode(),
    }
    if provider == "google":
        return described | {"labels": message.labels}
    return described | {"is_read": not message.unread}
