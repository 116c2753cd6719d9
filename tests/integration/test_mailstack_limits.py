"""The local mail stack has room for several mail-workers' pooled sessions.

Postfix and Dovecot serve 100 connections at once by default (one process each; over TLS, an
IMAP session holds two) and Dovecot lets one user keep 10 sessions from one address: three
workers with sessions pooled for fifty accounts need more. Here, well past those defaults, every
connection is greeted and every login of one user succeeds, all held open at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.mailstack import MailStack

pytestmark = pytest.mark.integration

AT_ONCE = 150  # the servers' own default is 100 processes per service
ONE_USER = 30  # Dovecot's own default is 10 sessions per user and address
GREETING_SECONDS = 30.0  # generous on 2 busy cores; a connection over the limit never gets one


@contextlib.asynccontextmanager
async def held_open() -> AsyncIterator[list[asyncio.StreamWriter]]:
    writers: list[asyncio.StreamWriter] = []
    try:
        yield writers
    finally:
        for writer in writers:
            writer.close()


async def test_many_smtp_sessions_at_once_are_all_greeted(mail_stack: MailStack) -> None:
    mail = mail_stack.endpoints
    async with held_open() as writers:

        async def greeting() -> bytes:
            reader, writer = await asyncio.open_connection(mail.host, mail.smtp_starttls_port)
            writers.append(writer)
            return await reader.readline()

        async with asyncio.timeout(GREETING_SECONDS):
            greetings = await asyncio.gather(*(greeting() for _ in range(AT_ONCE)))

    assert all(line.startswith(b"220 ") for line in greetings), set(greetings)


async def test_many_imap_sessions_at_once_and_many_of_one_user_are_served(
    mail_stack: MailStack,
) -> None:
    mail = mail_stack.endpoints
    address = await asyncio.to_thread(mail_stack.create_mailbox, "many-sessions", "secret-1")
    tls = client_ssl_context(mail.ca_file)
    async with held_open() as writers:

        async def session(log_in: bool) -> bytes:
            reader, writer = await asyncio.open_connection(mail.host, mail.imap_port, ssl=tls)
            writers.append(writer)
            answer = await reader.readline()
            if log_in and answer.startswith(b"* OK"):
                writer.write(f'a LOGIN "{address}" "secret-1"\r\n'.encode())
                while not (answer := await reader.readline()).startswith(b"a "):
                    pass
            return answer

        async with asyncio.timeout(GREETING_SECONDS):
            answers = await asyncio.gather(*(session(n < ONE_USER) for n in range(AT_ONCE)))

    assert all(line.startswith(b"a OK") for line in answers[:ONE_USER]), set(answers[:ONE_USER])
    assert all(line.startswith(b"* OK") for line in answers[ONE_USER:]), set(answers[ONE_USER:])
