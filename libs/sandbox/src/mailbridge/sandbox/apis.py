"""The slice of the Gmail API and Microsoft Graph a connection test touches, with their errors."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mailbridge.sandbox.microsoft import GRAPH, object_id
from mailbridge.sandbox.state import AccessToken, ProviderState, User
from mailbridge.sandbox.web import bearer, stable_number

GMAIL_READ_SCOPES = {
    "https://mail.google.com/",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://www.googleapis.com/auth/gmail.readonly",
}
GRAPH_MAIL_READ = {f"{GRAPH}/{s}" for s in ("Mail.ReadBasic", "Mail.Read", "Mail.ReadWrite")}
GRAPH_USER_READ = {f"{GRAPH}/{s}" for s in ("User.Read", "User.ReadWrite", "User.ReadBasic.All")}

Handler = Callable[[User, AccessToken], Response]


def gmail_error(
    status: int, reason: str, message: str, extra: dict[str, Any], detail: str = ""
) -> Response:
    """Google's error envelope; ``detail`` is the message of the single ``errors`` item."""
    item = {"message": detail or message, "domain": "global", "reason": reason}
    body = {"error": {"code": status, "message": message, "errors": [item], **extra}}
    return JSONResponse(body, status_code=status)


def gmail_unauthenticated() -> Response:
    item = {
        "domain": "global",
        "reason": "authError",
        "message": "Invalid Credentials",
        "locationType": "header",
        "location": "Authorization",
    }
    body = {"error": {"errors": [item], "code": 401, "message": "Invalid Credentials"}}
    return JSONResponse(body, status_code=401, headers={"WWW-Authenticate": 'Bearer realm=""'})


def gmail_insufficient_scope() -> Response:
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "domain": "googleapis.com",
        "metadata": {
            "service": "gmail.googleapis.com",
            "method": "caribou.api.proto.MailboxService",
        },
    }
    extra = {"status": "PERMISSION_DENIED", "details": [info]}
    message = "Request had insufficient authentication scopes."
    return gmail_error(403, "insufficientPermissions", message, extra, "Insufficient Permission")


def gmail_unavailable(kind: str) -> Response:
    if kind == "429":
        message = "Quota exceeded for quota metric 'Queries' of service 'gmail.googleapis.com'."
        return gmail_error(429, "rateLimitExceeded", message, {"status": "RESOURCE_EXHAUSTED"})
    status = int(kind)
    grpc = "INTERNAL" if status == 500 else "UNAVAILABLE"
    return gmail_error(status, "backendError", "Backend Error", {"status": grpc})


def graph_error(status: int, code: str, message: str, retry_after: bool = False) -> Response:
    inner = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4()),
    }
    body = {"error": {"code": code, "message": message, "innerError": inner}}
    headers = {"Retry-After": "1"} if retry_after else {}
    return JSONResponse(body, status_code=status, headers=headers)


def graph_unauthenticated() -> Response:
    response = graph_error(401, "InvalidAuthenticationToken", "Access token validation failure.")
    response.headers["WWW-Authenticate"] = (
        'Bearer realm="", client_id="00000003-0000-0000-c000-000000000000"'
    )
    return response


def graph_unavailable(kind: str) -> Response:
    if kind == "429":
        message = "Application is over its MailboxConcurrency limit."
        return graph_error(429, "ApplicationThrottled", message, retry_after=True)
    if kind == "503":
        return graph_error(503, "serviceNotAvailable", "Service unavailable.", retry_after=True)
    return graph_error(500, "generalException", "An internal server error occurred.")


class MailApis:
    def __init__(self, google: ProviderState, microsoft: ProviderState) -> None:
        self.google = google
        self.microsoft = microsoft

    async def _switched(self, state: ProviderState) -> str | None:
        """Count the call; the kind of a switched-on failure to answer with, if any."""
        state.counters["api"] += 1
        failure = state.take_failure("api")
        if failure is not None and failure.kind == "slow":
            await asyncio.sleep(failure.delay_seconds)
            return None
        return None if failure is None else failure.kind

    def gmail(self, needs: set[str], answer: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            kind = await self._switched(self.google)
            if kind in ("429", "500", "503"):
                return gmail_unavailable(kind)
            token = self.google.live_access_token(bearer(request))
            if token is None or kind is not None:
                return gmail_unauthenticated()
            if not needs & set(token.scopes):
                return gmail_insufficient_scope()
            return answer(self.google.user(token.email), token)

        return endpoint

    def graph(
        self, needs: set[str], answer: Handler, denied: tuple[str, str]
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            kind = await self._switched(self.microsoft)
            if kind in ("429", "500", "503"):
                return graph_unavailable(kind)
            token = self.microsoft.live_access_token(bearer(request))
            if token is None or token.resource != GRAPH or kind is not None:
                return graph_unauthenticated()
            if not needs & set(token.scopes):
                return graph_error(403, *denied)
            return answer(self.microsoft.user(token.email), token)

        return endpoint

    def routes(self) -> list[Route]:
        gmail = "/gmail/gmail/v1/users/me"
        mail_denied = ("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        user_denied = (
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
        return [
            Route(f"{gmail}/profile", self.gmail(GMAIL_READ_SCOPES, gmail_profile)),
            Route(f"{gmail}/labels/INBOX", self.gmail(GMAIL_READ_SCOPES, gmail_inbox)),
            Route("/graph/v1.0/me", self.graph(GRAPH_USER_READ, graph_me, user_denied)),
            Route(
                "/graph/v1.0/me/mailFolders/inbox",
                self.graph(GRAPH_MAIL_READ, graph_inbox, mail_denied),
            ),
            Route(
                "/graph/oidc/userinfo",
                self.graph({"openid"}, graph_userinfo, user_denied),
                methods=["GET", "POST"],
            ),
        ]


def gmail_profile(user: User, token: AccessToken) -> Response:
    total = user.inbox_total
    body = {"emailAddress": user.email, "messagesTotal": total, "threadsTotal": total}
    return JSONResponse(body | {"historyId": stable_number(user.email, 7)})


def gmail_inbox(user: User, token: AccessToken) -> Response:
    return JSONResponse(
        {
            "id": "INBOX",
            "name": "INBOX",
            "messageListVisibility": "hide",
            "labelListVisibility": "labelShow",
            "type": "system",
            "messagesTotal": user.inbox_total,
            "messagesUnread": user.unread,
            "threadsTotal": user.inbox_total,
            "threadsUnread": user.unread,
        }
    )


def graph_me(user: User, token: AccessToken) -> Response:
    return JSONResponse(
        {
            "@odata.context": f"{GRAPH}/v1.0/$metadata#users/$entity",
            "id": object_id(user),
            "displayName": user.upn.partition("@")[0],
            "mail": user.mail or None,
            "userPrincipalName": user.upn,
        }
    )


def graph_inbox(user: User, token: AccessToken) -> Response:
    folder_id = "AAMk" + stable_number("inbox:" + user.upn, 16)
    return JSONResponse(
        {
            "id": folder_id,
            "displayName": "Inbox",
            "parentFolderId": "AAMk" + stable_number("root:" + user.upn, 16),
            "childFolderCount": 0,
            "unreadItemCount": user.unread,
            "totalItemCount": user.inbox_total,
            "isHidden": False,
        }
    )


def graph_userinfo(user: User, token: AccessToken) -> Response:
    name = user.upn.partition("@")[0]
    body: dict[str, Any] = {"sub": object_id(user), "name": name, "given_name": name}
    if user.mail:
        body["email"] = user.mail
    return JSONResponse(body)
