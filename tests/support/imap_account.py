"""A new mailbox in the local mail stack, and the worker's IMAP adapter connected to it: what the
integration tests of the IMAP adapter (watching, reading on demand) start from."""

from __future__ import annotations

from pydantic import SecretStr

from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from mailbridge.mail_worker.adapters.imap import AioimaplibMailboxReader
from mailbridge.mail_worker.adapters.network import AddressGuard, Network
from mailbridge.mail_worker.adapters.sessions import HostBudget, SessionLimits
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import Credentials, ServerEndpoint
from mailbridge.shared.outbound import tls_context


class LocalImapAccount:
    def __init__(
        self, mail_stack: MailStack, endpoints: MailStackEndpoints, prefix: str, timeout: float
    ) -> None:
        self.password = new_id()
        self.address = mail_stack.create_mailbox(new_id(prefix).replace("_", "-"), self.password)
        self.account = Credentials(
            provider="imap", email=self.address, password=SecretStr(self.password),
            imap=ServerEndpoint(host="127.0.0.1", port=endpoints.imap_port, security="ssl"),
        )  # fmt: skip
        network = Network(
            AddressGuard(allow_internal=True, timeout=10), tls_context(endpoints.ca_file), timeout
        )
        self.reader = AioimaplibMailboxReader(network, SessionLimits(HostBudget(limit=4)))
