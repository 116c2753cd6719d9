"""GmailApi and GraphApi: who a token signs in as, and the inbox counts, over HTTPS.

Both go through one ``ApiHttp``, the worker's one HTTP client for the providers: TLS always
verified (the system CAs, plus ``MAILBRIDGE_OAUTH_CA_FILE`` when set), every call bounded by one
timeout. The API hosts come from the operator's settings, never from a user, so the address
guard of IMAP and SMTP has nothing to check here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from mailbridge.mail_worker.adapters.network import connection_error
from mailbridge.mail_worker.domain.api_errors import classify_gmail_error, classify_graph_error
from mailbridge.mail_worker.domain.classify import refusal
from mailbridge.mail_worker.ports import InboxCounts, ProbedMailbox
from mailbridge.shared.errors import ErrorCode, MailbridgeError, RetryableError
from mailbridge.shared.outbound import tls_context

Answer = TypeVar("Answer", bound=BaseModel)
Classifier = Callable[[int, object], ErrorCode]
"""An error answer's HTTP status and JSON body (None when it has none) → its taxonomy code."""


class ApiHttp:
    """A bearer-token GET that answers the JSON body as a model, or raises the taxonomy's error."""

    def __init__(
        self,
        *,
        ca_file: str | None,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,  # httpx.MockTransport in tests
    ) -> None:
        verify = tls_context(Path(ca_file) if ca_file else None)
        self._client = httpx.AsyncClient(verify=verify, timeout=timeout, transport=transport)

    async def close(self) -> None:
        await self._client.aclose()

    async def get(
        self, url: str, token: SecretStr, answer: type[Answer], classify: Classifier
    ) -> Answer:
        response = await self._sent(url, token)
        host = response.url.host
        if response.status_code != 200:
            code = classify(response.status_code, _json_or_none(response))
            raise refusal(code, f"{host} answered HTTP {response.status_code}.")
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as exc:
            raise RetryableError(
                ErrorCode.PROVIDER_UNAVAILABLE, f"{host} answered what is not a {answer.__name__}."
            ) from exc

    async def _sent(self, url: str, token: SecretStr) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"}
        try:
            return await self._client.get(url, headers=headers)
        except httpx.TransportError as exc:
            raise network_error(exc, httpx.URL(url)) from exc


class GmailProfile(BaseModel):
    emailAddress: str


class GmailLabel(BaseModel):
    messagesTotal: int = 0
    messagesUnread: int = 0


class GmailApi:
    """``users/me/profile`` for the address, ``users/me/labels/INBOX`` for the counts."""

    def __init__(self, http: ApiHttp, base_url: str) -> None:
        self._http, self._me = http, base_url.rstrip("/") + "/gmail/v1/users/me"

    async def probe(self, token: SecretStr) -> ProbedMailbox:
        profile, inbox = await asyncio.gather(
            self._http.get(f"{self._me}/profile", token, GmailProfile, classify_gmail_error),
            self._http.get(f"{self._me}/labels/INBOX", token, GmailLabel, classify_gmail_error),
        )
        counts = InboxCounts(total=inbox.messagesTotal, unread=inbox.messagesUnread)
        return ProbedMailbox(email=profile.emailAddress, counts=counts)


class GraphUser(BaseModel):
    mail: str | None = None  # None for a mailbox-less user; the UPN is its sign-in name then
    userPrincipalName: str


class GraphFolder(BaseModel):
    totalItemCount: int = 0
    unreadItemCount: int = 0


class GraphApi:
    """``/me`` for the address (``mail``, else the UPN), ``/me/mailFolders/inbox``: the counts."""

    def __init__(self, http: ApiHttp, base_url: str) -> None:
        self._http, self._me = http, base_url.rstrip("/") + "/me"

    async def probe(self, token: SecretStr) -> ProbedMailbox:
        user, inbox = await asyncio.gather(
            self._http.get(
                f"{self._me}?$select=mail,userPrincipalName", token, GraphUser, classify_graph_error
            ),
            self._http.get(
                f"{self._me}/mailFolders/inbox", token, GraphFolder, classify_graph_error
            ),
        )
        counts = InboxCounts(total=inbox.totalItemCount, unread=inbox.unreadItemCount)
        return ProbedMailbox(email=user.mail or user.userPrincipalName, counts=counts)


def network_error(exc: httpx.TransportError, url: httpx.URL) -> MailbridgeError:
    """Refused, timed out, TLS or DNS as the IMAP and SMTP adapters say them; a connection lost
    after it was made is the provider being unavailable."""
    port = url.port or 443
    if isinstance(exc, httpx.TimeoutException):
        return connection_error(TimeoutError(), url.host, port)
    if isinstance(exc, httpx.ConnectError):
        return connection_error(_innermost(exc), url.host, port)
    return RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, f"{url.host} dropped the connection.")


def _innermost(exc: BaseException) -> BaseException:
    """httpx wraps httpcore's error, which wraps the socket's or the TLS library's."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return exc


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None
