"""ApiHttp: the mail-worker's one HTTP client for the providers' mailbox APIs (Gmail, Graph).

TLS is always verified (the system CAs, plus ``MAILBRIDGE_OAUTH_CA_FILE`` when set) and every call
is bounded by one timeout. The API hosts come from the operator's settings, never from a user, so
the address guard of IMAP and SMTP has nothing to check here; a link a provider answers (Graph's
delta links) is followed only on the API's own origin.

Every answer that is not a success becomes the taxonomy's error, classified by the provider's
rules, with its ``Retry-After`` kept. A POST that changes the mailbox (a send) tells the moment its
body starts to go out (``sending``): a failure before it sent nothing, a connection lost after it
may have been carried out, and is :class:`OutcomeUnknownError`.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from mailbridge.mail_worker.adapters.network import connection_error
from mailbridge.mail_worker.domain.classify import TEMPORARY
from mailbridge.mail_worker.ports import CursorExpiredError, DataStarting, OutcomeUnknownError
from mailbridge.shared.errors import (
    ErrorCode,
    ErrorInfo,
    MailbridgeError,
    PermanentError,
    RetryableError,
)
from mailbridge.shared.outbound import tls_context

Answer = TypeVar("Answer", bound=BaseModel)
Classifier = Callable[[int, object], ErrorCode | ErrorInfo]
"""An error answer's HTTP status and JSON body (None when it has none) → its taxonomy code, or
the whole error when the provider's code says more than the catalog (never retried then)."""


class ApiHttp:
    """Bearer-token calls that answer the body, or raise the taxonomy's error."""

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
        self,
        url: str,
        token: SecretStr,
        answer: type[Answer],
        classify: Classifier,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        return parsed(await self.get_bytes(url, token, classify, headers), answer, url)

    async def get_bytes(
        self,
        url: str,
        token: SecretStr,
        classify: Classifier,
        headers: dict[str, str] | None = None,
        expired: int | None = None,
    ) -> bytes:
        """``expired``: the status that says a sync position is too old (CursorExpiredError)."""
        request = self._client.build_request("GET", url, headers=_auth(token) | (headers or {}))
        try:
            response = await self._client.send(request)
        except httpx.TransportError as exc:
            raise network_error(exc, request.url) from exc
        if response.status_code == expired:
            raise CursorExpiredError(f"{request.url.host} answered HTTP {expired}")
        return answered(response, classify)

    async def post(
        self,
        url: str,
        token: SecretStr,
        body: bytes,
        content_type: str,
        classify: Classifier,
        sending: DataStarting,
    ) -> bytes:
        """Runs ``sending`` once the connection is up, right before the body goes out."""
        started = False

        async def stream() -> AsyncIterator[bytes]:
            nonlocal started
            await sending()
            started = True
            yield body

        headers = _auth(token) | {"Content-Type": content_type, "Content-Length": str(len(body))}
        request = self._client.build_request("POST", url, headers=headers, content=stream())
        try:
            response = await self._client.send(request)
        except httpx.TransportError as exc:
            if started:
                raise OutcomeUnknownError(f"{request.url.host} did not answer a send") from exc
            raise network_error(exc, request.url) from exc
        return answered(response, classify)


def _auth(token: SecretStr) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.get_secret_value()}"}


def answered(response: httpx.Response, classify: Classifier) -> bytes:
    """The body of a success; any other answer as the taxonomy's error, its wait kept."""
    if response.is_success:
        return response.content
    body = _json_or_none(response)
    code = classify(response.status_code, body)
    if isinstance(code, ErrorInfo):
        raise PermanentError.explained(code)
    detail = f"{response.url.host} answered HTTP {response.status_code}."
    if code not in TEMPORARY:
        raise PermanentError(code, detail)
    wait = retry_after(response)
    raise RetryableError(code, detail, retry_after_seconds=wait or _retry_after_told(body))


def parsed(content: bytes, answer: type[Answer], url: str) -> Answer:
    try:
        return answer.model_validate_json(content)
    except ValidationError as exc:
        host = httpx.URL(url).host
        raise RetryableError(
            ErrorCode.PROVIDER_UNAVAILABLE, f"{host} answered what is not a {answer.__name__}."
        ) from exc


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: a number of seconds or an HTTP date); None without
    one, or with one that says neither."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _seconds_until(when)


_RETRY_AFTER_TEXT = re.compile(r"Retry after (\d{4}-\d\d-\d\dT[0-9:.]+Z)")


def _retry_after_told(body: object) -> float | None:
    """Gmail says when a user's rate limit ends in the error's message: "Retry after <time>"."""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    found = _RETRY_AFTER_TEXT.search(message) if isinstance(message, str) else None
    if found is None:
        return None
    try:
        when = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
    except ValueError:
        return None
    return _seconds_until(when)


def _seconds_until(when: datetime) -> float:
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


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
