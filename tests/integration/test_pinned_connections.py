"""The mail-worker's IMAP and SMTP clients connect to the address the guard checked, and TLS
verifies the configured host NAME, against the real Dovecot and Postfix of the local mail stack.

A fake resolver answers 127.0.0.1 (the real servers) to the first lookup and 127.0.0.2 to any
later one, where rogue listeners wait on the same ports: a client that looked the name up again
after the check (DNS rebinding) would end up there. The stack's certificate is for ``localhost``
and 127.0.0.1, so a name it does not carry fails TLS even when it resolves to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pydantic import SecretStr

from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.mail_worker.adapters.imap import AioimaplibMailboxReader
from mailbridge.mail_worker.adapters.network import AddressGuard, Network, Resolver
from mailbridge.mail_worker.adapters.sessions import HostBudget, SessionLimits
from mailbridge.mail_worker.adapters.smtp import AiosmtplibSmtp
from mailbridge.mail_worker.domain import mime
from mailbridge.shared.clock import SystemClock
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import Credentials, SendMessage, ServerEndpoint
from mailbridge.shared.outbound import tls_context

pytestmark = pytest.mark.integration

PASSWORD = "pinned-secret"
ROGUE = "127.0.0.2"


@dataclass
class RebindingResolver:
    """127.0.0.1 for the first lookup, the rogue address for every later one."""

    lookups: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        return ["127.0.0.1"] if len(self.lookups) == 1 else [ROGUE]


@dataclass
class Rogue:
    accepted: int = 0

    async def on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        writer.close()


@pytest.fixture
async def rogue(mail_stack_ports: tuple[int, int]) -> AsyncIterator[Rogue]:
    """Listeners on 127.0.0.2 at the IMAP and SMTP ports of the real servers."""
    found = Rogue()
    servers = [await asyncio.start_server(found.on_client, ROGUE, p) for p in mail_stack_ports]
    yield found
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
def mail_stack_ports(mail_endpoints: MailStackEndpoints) -> tuple[int, int]:
    return mail_endpoints.imap_port, mail_endpoints.smtp_starttls_port


@pytest.fixture
def account(mail_stack: MailStack) -> str:
    return mail_stack.create_mailbox("pinned", PASSWORD)


def credentials(mail_endpoints: MailStackEndpoints, address: str, host: str) -> Credentials:
    return Credentials(
        provider="imap",
        email=address,
        password=SecretStr(PASSWORD),
        imap=ServerEndpoint(host=host, port=mail_endpoints.imap_port, security="ssl"),
        smtp=ServerEndpoint(host=host, port=mail_endpoints.smtp_starttls_port, security="starttls"),
    )


def network(mail_endpoints: MailStackEndpoints, resolver: Resolver) -> Network:
    guard = AddressGuard(allow_internal=True, timeout=10, resolver=resolver)
    return Network(guard, tls_context(mail_endpoints.ca_file), 10)


def sessions() -> SessionLimits:
    return SessionLimits(HostBudget(limit=8))


async def test_imap_goes_to_the_checked_address_and_verifies_the_name(
    mail_endpoints: MailStackEndpoints, account: str, rogue: Rogue
) -> None:
    resolver = RebindingResolver()
    reader = AioimaplibMailboxReader(network(mail_endpoints, resolver), sessions())

    counts = await reader.inbox_counts(credentials(mail_endpoints, account, "localhost"))

    assert counts.total >= 0
    assert resolver.lookups == ["localhost"]
    assert rogue.accepted == 0


async def test_smtp_goes_to_the_checked_address_and_verifies_the_name(
    mail_endpoints: MailStackEndpoints, account: str, rogue: Rogue
) -> None:
    resolver = RebindingResolver()
    smtp = AiosmtplibSmtp(network(mail_endpoints, resolver), sessions())
    account_credentials = credentials(mail_endpoints, account, "localhost")
    command = SendMessage(
        agent_id="pinned", command_id="cmd-pinned-1", to=[account], subject="pinned", text="hi"
    )
    outgoing = mime.build(command, sender=account, now=SystemClock().now())

    async def data_starting() -> None:
        return None

    accepted = await smtp.submit(account_credentials, outgoing, data_starting)
    await smtp.close()

    assert accepted == [account]
    assert resolver.lookups == ["localhost"]  # STARTTLS named and verified it: no second lookup
    assert rogue.accepted == 0


@pytest.mark.parametrize("protocol", ["imap", "smtp"])
async def test_a_name_the_certificate_does_not_carry_fails_tls_at_the_right_address(
    mail_endpoints: MailStackEndpoints, account: str, protocol: str
) -> None:
    """``elsewhere.example`` resolves to 127.0.0.1, which the certificate does carry: only a
    check against the name, not the address connected to, refuses it."""
    resolver = RebindingResolver()
    wrong_name = credentials(mail_endpoints, account, "elsewhere.example")
    net = network(mail_endpoints, resolver)

    attempt = (
        AioimaplibMailboxReader(net, sessions()).inbox_counts(wrong_name)
        if protocol == "imap"
        else AiosmtplibSmtp(net, sessions()).check_auth(wrong_name)
    )
    with pytest.raises(RetryableError) as failed:
        await attempt

    assert failed.value.code is ErrorCode.TLS_FAILED
    assert resolver.lookups == ["elsewhere.example"]


async def test_a_refused_login_leaves_nothing_that_breaks_the_next_connections(
    mail_endpoints: MailStackEndpoints, account: str
) -> None:
    """A refused session's socket is closed with its transport, never before: a descriptor freed
    early is handed to the next socket while the old transport still claims it."""

    async def loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    guard = AddressGuard(allow_internal=True, timeout=10, resolver=loopback)
    net = Network(guard, tls_context(mail_endpoints.ca_file), 10)
    smtp, reader = AiosmtplibSmtp(net, sessions()), AioimaplibMailboxReader(net, sessions())
    good = credentials(mail_endpoints, account, "localhost")
    bad = good.model_copy(update={"password": SecretStr("wrong")})
    for _ in range(3):
        with pytest.raises(PermanentError):
            await smtp.check_auth(bad)
        with pytest.raises(PermanentError):
            await reader.inbox_counts(bad)
        await smtp.check_auth(good)
        assert (await reader.inbox_counts(good)).total >= 0
