"""The IMAP Sent search the mail-worker resolves a lost SMTP answer with (for a server that files
what it sends, as Gmail's does), against the local Dovecot: a Message-ID in Sent is found, one
that is not is not, and an id with IMAP's special characters is searched for as it is."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.mail_worker.adapters.imap import AioimaplibMailboxReader
from mailbridge.mail_worker.adapters.network import AddressGuard, Network
from mailbridge.mail_worker.adapters.sessions import HostBudget, SessionLimits
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import Credentials, ServerEndpoint
from mailbridge.shared.outbound import tls_context

pytestmark = pytest.mark.integration


def message(message_id: str) -> bytes:
    return f"Message-ID: {message_id}\r\nSubject: sent\r\n\r\nbody\r\n".encode()


async def test_a_message_id_is_found_in_sent_exactly_as_it_was_filed(
    mail_stack: MailStack, mail_endpoints: MailStackEndpoints
) -> None:
    password = new_id()
    address = mail_stack.create_mailbox(new_id("sent").replace("_", "-"), password)
    account = Credentials(
        provider="imap", email=address, password=SecretStr(password),
        imap=ServerEndpoint(host="127.0.0.1", port=mail_endpoints.imap_port, security="ssl"),
    )  # fmt: skip
    guard = AddressGuard(allow_internal=True, timeout=10)
    network = Network(guard, tls_context(mail_endpoints.ca_file), 10)
    reader = AioimaplibMailboxReader(network, SessionLimits(HostBudget(limit=4)))
    odd = '<a"quoted\\\\one@example.com>'
    try:
        await reader.append(account, message("<filed@example.com>"))
        await reader.append(account, message(odd))
        found = [
            await reader.find_sent(account, mid)
            for mid in ("<filed@example.com>", odd, "<never@example.com>", "<filed@example.co>")
        ]
    finally:
        await reader.close()
    assert found == [True, True, False, False]  # whole, brackets included: never a prefix
