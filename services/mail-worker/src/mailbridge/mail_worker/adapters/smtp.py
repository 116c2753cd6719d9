"""AiosmtplibSubmissionChecker: EHLO + AUTH at the submission server, sending nothing.

STARTTLS is required, never opportunistic (``start_tls=True``); ``ssl`` means implicit TLS.
"""

from __future__ import annotations

import ssl

import aiosmtplib

from mailbridge.mail_worker.adapters.network import AddressGuard, connection_error
from mailbridge.mail_worker.domain.classify import classify_smtp_auth_failure
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials, ServerEndpoint


class AiosmtplibSubmissionChecker:
    def __init__(self, *, tls: ssl.SSLContext, guard: AddressGuard, timeout: float) -> None:
        self._tls, self._guard, self._timeout = tls, guard, timeout

    async def check_auth(self, credentials: Credentials) -> None:
        endpoint = credentials.smtp
        if endpoint is None or credentials.password is None:
            raise PermanentError(ErrorCode.INVALID_INPUT, "No SMTP server or password configured.")
        await self._guard.check(endpoint.host, endpoint.port)
        client = self._client(endpoint)
        await self._connect(client, endpoint)
        try:
            await client.login(
                credentials.username or credentials.email, credentials.password.get_secret_value()
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            code = classify_smtp_auth_failure(exc.code, exc.message)
            raise PermanentError(code, f"SMTP AUTH was refused ({exc.code}).") from exc
        except aiosmtplib.SMTPException as exc:
            raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, "SMTP AUTH failed.") from exc
        finally:
            client.close()

    def _client(self, endpoint: ServerEndpoint) -> aiosmtplib.SMTP:
        implicit = endpoint.security == "ssl"
        return aiosmtplib.SMTP(
            hostname=endpoint.host,
            port=endpoint.port,
            use_tls=implicit,
            start_tls=not implicit,
            tls_context=self._tls,
            timeout=self._timeout,
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
