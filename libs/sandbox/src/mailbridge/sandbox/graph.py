"""The Microsoft Graph v1.0 a mail-worker uses: /me, folders, sendMail, delta, $value, search.

Well-known folder names are taken in any case; ``/me/mailFolders('inbox')/…`` works as well as
``/me/mailFolders/inbox/…``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbridge.sandbox import graph_view
from mailbridge.sandbox.apis import graph_error, graph_unauthenticated, graph_unavailable
from mailbridge.sandbox.delivery import PostOffice
from mailbridge.sandbox.graph_delta import Delta
from mailbridge.sandbox.graph_send import GRAPH_SEND, GraphSend
from mailbridge.sandbox.guard import Dialect, Guard, Refused
from mailbridge.sandbox.mailstore import StoredMessage
from mailbridge.sandbox.microsoft import GRAPH, object_id
from mailbridge.sandbox.state import AccessToken, ProviderState, User

GRAPH_MAIL_READ = {f"{GRAPH}/{s}" for s in ("Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite")}
GRAPH_USER_READ = {f"{GRAPH}/{s}" for s in ("User.Read", "User.ReadWrite", "User.ReadBasic.All")}
ME = "/graph/v1.0/me"
DEFAULT_TOP = 10


def mail_denied() -> Response:
    return graph_error(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


def user_denied() -> Response:
    message = "Insufficient privileges to complete the operation."
    return graph_error(403, "Authorization_RequestDenied", message)


class GraphApi:
    def __init__(self, state: ProviderState, post: PostOffice, public_url: str) -> None:
        self.state = state
        dialect = Dialect(graph_unavailable, graph_unauthenticated, resource=GRAPH)
        self.guard = Guard(state, dialect)
        self.send = GraphSend(state, post)
        self.delta = Delta(public_url)

    def routes(self) -> list[Route]:
        mail = partial(self.guard.route, needs=GRAPH_MAIL_READ, denied=mail_denied)
        return [
            self.guard.route(ME, "api", GRAPH_USER_READ, user_denied, self.me),
            self.guard.route(
                "/graph/oidc/userinfo",
                "api",
                {"openid"},
                user_denied,
                self.userinfo,
                ("GET", "POST"),
            ),
            self.guard.route(
                f"{ME}/sendMail", "send", GRAPH_SEND, mail_denied, self.send.send_mail, ("POST",)
            ),
            mail(f"{ME}/mailFolders/{{folder}}", "api", answer=self.folder),
            mail(f"{ME}/mailFolders/{{folder}}/messages/delta", "sync", answer=self.messages_delta),
            mail(
                f"{ME}/mailFolders('{{folder}}')/messages/delta", "sync", answer=self.messages_delta
            ),
            mail(f"{ME}/mailFolders/{{folder}}/messages", "sync", answer=self.folder_messages),
            mail(f"{ME}/messages", "sync", answer=self.all_messages),
            mail(f"{ME}/messages/{{id}}/$value", "sync", answer=self.mime_content),
            mail(f"{ME}/messages/{{id}}", "sync", answer=self.message),
        ]

    async def me(self, request: Request, user: User, token: AccessToken) -> Response:
        return JSONResponse(
            {
                "@odata.context": f"{GRAPH}/v1.0/$metadata#users/$entity",
                "id": object_id(user),
                "displayName": user.upn.partition("@")[0],
                "mail": user.mail or None,
                "userPrincipalName": user.upn,
            }
        )

    async def userinfo(self, request: Request, user: User, token: AccessToken) -> Response:
        name = user.upn.partition("@")[0]
        body: dict[str, Any] = {"sub": object_id(user), "name": name, "given_name": name}
        if user.mail:
            body["email"] = user.mail
        return JSONResponse(body)

    async def folder(self, request: Request, user: User, token: AccessToken) -> Response:
        """A well-known folder with its counts from the store."""
        folder = graph_view.folder_of(request.path_params["folder"])
        total, unread = self.state.mailbox(user).counts(folder)
        return JSONResponse(
            {
                "id": graph_view.folder_id(user, "inbox" if folder == "inbox" else "sentitems"),
                "displayName": "Inbox" if folder == "inbox" else "Sent Items",
                "parentFolderId": graph_view.folder_id(user, "root"),
                "childFolderCount": 0,
                "unreadItemCount": unread,
                "totalItemCount": total,
                "isHidden": False,
            }
        )

    async def messages_delta(self, request: Request, user: User, token: AccessToken) -> Response:
        if graph_view.folder_of(request.path_params["folder"]) != "inbox":
            return graph_error(400, "ErrorInvalidRequest", "Delta is kept for the inbox only.")
        return self.delta.answer(request, user, self.state.mailbox(user))

    async def folder_messages(self, request: Request, user: User, token: AccessToken) -> Response:
        folder = graph_view.folder_of(request.path_params["folder"])
        found = self.state.mailbox(user).in_folder(folder)
        return self._listed(request, user, found)

    async def all_messages(self, request: Request, user: User, token: AccessToken) -> Response:
        return self._listed(request, user, list(self.state.mailbox(user).messages.values()))

    def _listed(self, request: Request, user: User, found: list[StoredMessage]) -> Response:
        """Newest first; ``$filter=internetMessageId eq '…'`` and ``$select`` applied."""
        params = request.query_params
        wanted = graph_view.message_id_filter(params.get("$filter"))
        names = graph_view.selected(params.get("$select"))
        if wanted is not None:
            found = [m for m in found if m.envelope.message_id == wanted]
        found = sorted(found, key=lambda m: m.received_at, reverse=True)[: _top(params)]
        body = {
            "@odata.context": f"{GRAPH}/v1.0/$metadata#users('{user.upn}')/messages",
            "value": [graph_view.resource(user, m, names) for m in found],
        }
        return JSONResponse(body)

    async def message(self, request: Request, user: User, token: AccessToken) -> Response:
        found = self._found(user, request.path_params["id"])
        names = graph_view.selected(request.query_params.get("$select"))
        return JSONResponse(graph_view.resource(user, found, names))

    async def mime_content(self, request: Request, user: User, token: AccessToken) -> Response:
        """The MIME as stored, byte for byte."""
        found = self._found(user, request.path_params["id"])
        return Response(found.raw, media_type="message/rfc822")

    def _found(self, user: User, message_id: str) -> StoredMessage:
        found = self.state.mailbox(user).messages.get(message_id)
        if found is None:
            raise Refused(graph_view.not_found())
        return found


def _top(params: Any) -> int:
    value = params.get("$top")
    if value is None:
        return DEFAULT_TOP
    if not (value.isascii() and value.isdigit()):
        message = f"Invalid value '{value}' for $top query option found."
        raise Refused(graph_error(400, "BadRequest", message))
    return max(1, min(int(value), 1000)) if len(value) < 6 else 1000
