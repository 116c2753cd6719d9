"""AioimaplibMailboxReader: IMAP login over verified TLS and ``STATUS INBOX (MESSAGES UNSEEN)``."""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl

import aioimaplib

from mailbridge.mail_worker.adapters.network import AddressGuard, connection_error
from mailbridge.mail_worker.domain.classify import classify_imap_login_failure
from mailbridge.mail_worker.ports import InboxCounts
from mailbridge.shared.errors import ErrorCode, MailbridgeError, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials

_STATUS_COUNTS = re.compile(rb"MESSAGES (\d+).*UNSEEN (\d+)|UNSEEN (\d+).*MESSAGES (\d+)")


class AioimaplibMailboxReader:
    def __init__(self, *, tls: ssl.SSLContext, guard: AddressGuard, timeout: float) -> None:
        self._tls, self._guard, self._timeout = tls, guard, timeout

    async def inbox_counts(self, credentials: Credentials) -> InboxCounts:
        client = await self._login(credentials)
        try:
            response = await client.status("INBOX", "(MESSAGES UNSEEN)")
            return _parse_counts(response.result, response.lines)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.logout(), 5)

    async def _login(self, credentials: Credentials) -> aioimaplib.IMAP4:
        endpoint = credentials.imap
        if endpoint is None or credentials.password is None:
            raise PermanentError(ErrorCode.INVALID_INPUT, "No IMAP server or password configured.")
        await self._guard.check(endpoint.host, endpoint.port)
        client = await self._connect(endpoint.host, endpoint.port, endpoint.security)
        response = await client.login(
            credentials.username or credentials.email, credentials.password.get_secret_value()
        )
        if response.result != "OK":
            text = b" ".join(response.lines).decode(errors="replace")
            raise PermanentError(classify_imap_login_failure(text), "IMAP login was refused.")
        return client

    async def _connect(self, host: str, port: int, security: str) -> aioimaplib.IMAP4:
        if security != "ssl":
            raise PermanentError(ErrorCode.INVALID_INPUT, "IMAP requires implicit TLS (ssl).")
        try:
            client = aioimaplib.IMAP4_SSL(host, port, ssl_context=self._tls, timeout=self._timeout)
            await asyncio.wait_for(client.wait_hello_from_server(), self._timeout)
        except MailbridgeError:
            raise
        except (OSError, TimeoutError) as exc:
            raise connection_error(exc, host, port) from exc
        return client


def _parse_counts(result: str, lines: list[bytes]) -> InboxCounts:
    for line in lines:
        match = _STATUS_COUNTS.search(line)
        if match:
            messages, unseen = (
                (match.group(1), match.group(2))
                if match.group(1)
                else (
                    match.group(4),
                    match.group(3),
                )
            )
            return InboxCounts(total=int(messages), unread=int(unseen))
    raise RetryableError(ErrorCode.PROVIDER_UNAVAILABLE, f"STATUS INBOX answered {result}.")
