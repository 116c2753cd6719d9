"""AiosmtplibSmtp: EHLO + AUTH checks and submissions at the account's SMTP server.

STARTTLS is required, never opportunistic (``start_tls=True``); ``ssl`` means implicit TLS.
A submission runs MAIL, RCPT and DATA as separate steps so that the moment the message data
starts is known: a failure before it is retryable, a lost connection after it is ``unknown``.

Each submission is a span, ``smtp submit``, in the trace of its send: the server, how many
recipients were asked and accepted, and the server's answer code (``smtp.response.code``, the
reply to DATA, or the refusal that ended the submission). Never an address or the message: the
span records no exception, whose text is the server's reply and may echo the recipients.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable
from functools import partial

import aiosmtplib
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from mailbridge.mail_worker.adapters.network import Network, connection_error
from mailbridge.mail_worker.adapters.sessions import (
    SessionKey,
    SessionLimits,
    SessionPool,
    account_key,
)
from mailbridge.mail_worker.adapters.xoauth2 import MailTokenSource, Refused, XOAuth2Login
from mailbridge.mail_worker.domain.classify import (
    classify_smtp_auth_failure,
    classify_smtp_reply,
    refusal,
)
from mailbridge.mail_worker.domain.mime import Outgoing
from mailbridge.mail_worker.ports import DataStarting, OutcomeUnknownError
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials, ServerEndpoint

RESPONSE_CODE = "smtp.response.code"


class AiosmtplibSmtp:
    def __init__(
        self,
        network: Network,
        sessions: SessionLimits,
        tokens: MailTokenSource | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self._network, self._budget = network, sessions.budget
        self._tracer = tracer or trace.get_tracer(__name__)
        self._xoauth2 = XOAuth2Login(tokens)
        self._pool: SessionPool[aiosmtplib.SMTP] = sessions.pool(alive=_answers_noop, close=_quit)

    async def check_auth(self, credentials: Credentials) -> None:
        """Always a fresh connection and login: that is what a test is for."""
        async with self._budget.slot(_endpoint(credentials).host):
            client = await self._open(credentials)
            await _quit(client)

    async def close(self) -> None:
        await self._pool.close_all()

    async def submit(
        self,
        credentials: Credentials,
        outgoing: Outgoing,
        data_starting: DataStarting,
    ) -> list[str]:
        """Submit; answers the accepted recipients. ``data_starting`` runs just before DATA."""
        endpoint = _endpoint(credentials)
        attributes: dict[str, AttributeValue] = {
            "server.address": endpoint.host,
            "server.port": endpoint.port,
            "smtp.recipients": len(outgoing.recipients),
        }
        with self._tracer.start_as_current_span(
            "smtp submit", kind=SpanKind.CLIENT, attributes=attributes,
            record_exception=False, set_status_on_exception=False,
        ) as span:  # fmt: skip
            try:
                key = account_key(credentials, endpoint)
                accepted = await self._submit(key, credentials, outgoing, data_starting)
            except Exception as exc:
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            span.set_attribute("smtp.accepted", len(accepted))
            return accepted

    async def _submit(
        self,
        key: SessionKey,
        credentials: Credentials,
        outgoing: Outgoing,
        data_starting: DataStarting,
    ) -> list[str]:
        async with self._pool.lease(key, lambda: self._open(credentials)) as client:
            await _step(client.mail(outgoing.envelope_from))
            accepted = await _recipients(client, outgoing.recipients)
            await data_starting()
            try:
                reply = await client.data(outgoing.as_bytes())
            except aiosmtplib.SMTPResponseException as exc:
                raise _reply_error(exc) from exc
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                raise OutcomeUnknownError("the connection ended during DATA") from exc
            trace.get_current_span().set_attribute(RESPONSE_CODE, reply.code)
            return accepted

    async def _open(self, credentials: Credentials) -> aiosmtplib.SMTP:
        """A connected, logged-in client: connected to the address the guard checked, TLS
        verified against the host name."""
        endpoint = _endpoint(credentials)
        sock = await self._network.guard.connect(endpoint.host, endpoint.port)
        try:
            client = self._client(endpoint, sock)
        except BaseException:
            sock.close()
            raise
        try:  # the socket is the transport's from here on: closing the client closes it
            await self._connect(client, endpoint)
            if credentials.xoauth2:
                attempt = partial(_xoauth2_attempt, client)
                await self._xoauth2.log_in(credentials, attempt, "SMTP XOAUTH2 was refused.")
            else:
                await _login(client, credentials)
        except BaseException:
            client.close()
            raise
        return client

    def _client(self, endpoint: ServerEndpoint, sock: socket.socket) -> aiosmtplib.SMTP:
        """On ``sock``; ``hostname`` is what TLS names (SNI) and verifies, never looked up."""
        implicit = endpoint.security == "ssl"
        return aiosmtplib.SMTP(
            hostname=endpoint.host,
            sock=sock,
            use_tls=implicit,
            start_tls=not implicit,
            tls_context=self._network.tls,
            timeout=self._network.timeout,
        )

    async def _connect(self, client: aiosmtplib.SMTP, endpoint: ServerEndpoint) -> None:
        try:
            await client.connect()
        except aiosmtplib.SMTPConnectTimeoutError as exc:
            raise connection_error(TimeoutError(), endpoint.host, endpoint.port) from exc
        except aiosmtplib.SMTPConnectError as exc:
            cause = exc.__cause__ if exc.__cause__ is not None else exc
            raise connection_error(cause, endpoint.host, endpoint.port) from exc
        except (OSError, TimeoutError) as exc:
            raise connection_error(exc, endpoint.host, endpoint.port) from exc
        except aiosmtplib.SMTPException as exc:
            raise RetryableError(ErrorCode.TLS_FAILED, "STARTTLS was not possible.") from exc


def _endpoint(credentials: Credentials) -> ServerEndpoint:
    if credentials.smtp is None or (credentials.password is None and not credentials.xoauth2):
        raise PermanentError(ErrorCode.INVALID_INPUT, "No SMTP server or password configured.")
    return credentials.smtp


async def _answers_noop(client: aiosmtplib.SMTP) -> bool:
    try:
        await client.noop()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        return False
    return True


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


async def _login(client: aiosmtplib.SMTP, credentials: Credentials) -> None:
    assert credentials.password is not None
    try:
        await client.login(
            credentials.username or credentials.email, credentials.password.get_secret_value()
        )
    except aiosmtplib.SMTPAuthenticationError as exc:
        code = classify_smtp_auth_failure(exc.code, exc.message)
        raise refusal(code, f"SMTP AUTH was refused ({exc.code}).") from exc
    except aiosmtplib.SMTPException as exc:
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "SMTP AUTH failed.") from exc


async def _xoauth2_attempt(client: aiosmtplib.SMTP, initial_response: str) -> Refused | None:
    """``AUTH XOAUTH2 <initial response>``; a ``334`` challenge is the refusal's JSON, answered
    with an empty line to get the final reply."""
    try:
        if client.is_ehlo_or_helo_needed:
            await client.ehlo()
        reply = await client.execute_command(b"AUTH", b"XOAUTH2", initial_response.encode())
        challenge = reply.message.encode() if reply.code == 334 else None
        if challenge is not None:
            reply = await client.execute_command(b"")
    except aiosmtplib.SMTPException as exc:
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "SMTP AUTH failed.") from exc
    if reply.code == 235:
        return None
    return Refused(classify_smtp_auth_failure(reply.code, reply.message), challenge)


async def _step(command: Awaitable[object]) -> None:
    try:
        await command
    except aiosmtplib.SMTPResponseException as exc:
        raise _reply_error(exc) from exc
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "The SMTP session broke.") from exc


async def _recipients(client: aiosmtplib.SMTP, recipients: list[str]) -> list[str]:
    """RCPT each; refusals of some are tolerated, refusal of all is the send's failure."""
    accepted, last_refusal = [], None
    for recipient in recipients:
        try:
            await client.rcpt(recipient)
            accepted.append(recipient)
        except aiosmtplib.SMTPRecipientRefused as exc:
            last_refusal = exc
    if not accepted:
        assert last_refusal is not None
        raise _reply_error(last_refusal)
    return accepted


def _reply_error(exc: aiosmtplib.SMTPResponseException) -> RetryableError | PermanentError:
    """4xx: try again later; 5xx: it will not work. The code is the submission span's answer."""
    trace.get_current_span().set_attribute(RESPONSE_CODE, exc.code)
    code = classify_smtp_reply(exc.code, exc.message)
    detail = f"The SMTP server answered {exc.code}."
    return RetryableError(code, detail) if 400 <= exc.code < 500 else PermanentError(code, detail)
