"""What every mail-API call goes through, at both look-alikes, before and after its answer.

In order: the traffic record and in-flight count, the endpoint's counter, a switched-on failure
(an error status, a delay, stale cursors, or a dropped connection after the work is done), the
bearer token, the scopes. A handler refuses a request by raising ``Refused`` with the body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from mailbridge.sandbox.state import AccessToken, Failure, ProviderState, User
from mailbridge.sandbox.web import bearer

MailHandler = Callable[[Request, User, AccessToken], Awaitable[Response]]
STATUS_KINDS = ("429", "500", "503")
# failures that change how the call goes on, not whether it is authenticated
CARRY_ON_KINDS = ("slow", "expired_cursor", "drop_after_read")


class Refused(Exception):
    """A handler's error answer, raised from wherever the request was found wanting."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class Dialect:
    """How one provider says "unavailable" and "who are you", and whose tokens it takes."""

    unavailable: Callable[[str, int], Response]
    unauthenticated: Callable[[], Response]
    resource: str | None = None


class Dropped(Response):
    """Starts the answer, sends part of it and hangs up: the client saw its request carried
    out by nobody, though it was. Uvicorn closes a connection whose response is unfinished."""

    def __init__(self, answer: Response) -> None:
        super().__init__(answer.body, answer.status_code)
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = bytes(self.answer.body)
        headers = [(k, v) for k, v in self.answer.raw_headers if k != b"content-length"]
        headers.append((b"content-length", str(len(body) + 64).encode()))
        start = {"type": "http.response.start", "status": self.status_code, "headers": headers}
        await send(start)
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )


class Guard:
    def __init__(self, state: ProviderState, dialect: Dialect) -> None:
        self.state = state
        self.dialect = dialect

    def route(
        self,
        path: str,
        endpoint: str,
        needs: set[str],
        denied: Callable[[], Response],
        answer: MailHandler,
        methods: tuple[str, ...] = ("GET",),
    ) -> Route:
        """``answer`` at ``path``, for tokens with one of ``needs``; ``endpoint`` names the
        counter and the failures that apply (besides ``api``'s)."""

        async def guarded(request: Request) -> Response:
            token = self.state.live_access_token(bearer(request))
            email = token.email if token is not None else ""
            traffic = self.state.traffic
            at, status = traffic.begin(email), 500
            try:
                response = await self._answer(request, token, endpoint, needs, denied, answer)
                status = response.status_code
                return response
            finally:
                traffic.end(at, request.method, request.url.path, status, email)

        return Route(path, guarded, methods=list(methods))

    async def _answer(
        self,
        request: Request,
        token: AccessToken | None,
        endpoint: str,
        needs: set[str],
        denied: Callable[[], Response],
        answer: MailHandler,
    ) -> Response:
        self.state.counters[endpoint] += 1
        failure = self.state.take_mail_failure(endpoint)
        if failure is not None and failure.kind in STATUS_KINDS:
            return self.dialect.unavailable(failure.kind, failure.retry_after)
        if failure is not None and failure.kind == "slow":
            await asyncio.sleep(failure.delay_seconds)
        if token is None or not self._accepts(token, failure):
            return self.dialect.unauthenticated()
        if not needs & set(token.scopes):
            return denied()
        return await self._carried_out(request, token, failure, answer)

    def _accepts(self, token: AccessToken, failure: Failure | None) -> bool:
        """The token is for this API, and no failure of the token kind is switched on."""
        resource_ok = self.dialect.resource is None or token.resource == self.dialect.resource
        return resource_ok and (failure is None or failure.kind in CARRY_ON_KINDS)

    async def _carried_out(
        self, request: Request, token: AccessToken, failure: Failure | None, answer: MailHandler
    ) -> Response:
        user = self.state.user(token.email)
        if failure is not None and failure.kind == "expired_cursor":
            self.state.mailbox(user).expire_cursors()
        try:
            response = await answer(request, user, token)
        except Refused as refused:
            return refused.response
        if failure is not None and failure.kind == "drop_after_read":
            return Dropped(response)
        return response
