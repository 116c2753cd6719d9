"""Test data shared by several test modules: keys, sealers, request bodies, and the mail-worker's
send handler with every port faked, so no test module imports another's."""

from __future__ import annotations

from pydantic import SecretStr, TypeAdapter

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import EmailConfigIn
from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.ports import SendRoute
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from mailbridge.shared.messages import Credentials, Event, SendMessage
from tests.fakes.clock import FixedClock
from tests.fakes.mail_worker import (
    FakeCredentials,
    FakePolicy,
    FakeSentFolder,
    FakeSubmitter,
    MemoryContentStore,
    MemoryLedger,
)

SEALER = Sealer(parse_keys(generate_key_spec("k1")))
BODY = TypeAdapter(EmailConfigIn)
OPERATOR = Principal("op", None)
ACCOUNT = Credentials(provider="imap", email="agent@example.com", password=SecretStr("pw"))
IMAP_JSON = {
    "provider": "imap",
    "email": "agent@example.com",
    "imap": {"host": "imap.example.com", "port": 993, "security": "ssl"},
    "smtp": {"host": "smtp.example.com", "port": 587, "security": "starttls"},
    "password": "app-pw",
}
"""An IMAP config as a client sends it to ``PUT …/email-config``."""


async def send(
    cmd: SendMessage,
    submitter: FakeSubmitter,
    ledger: MemoryLedger,
    sent: FakeSentFolder | None = None,
    policy: FakePolicy | None = None,
    store: MemoryContentStore | None = None,
) -> list[Event]:
    """The mail-worker's send use case on fakes; a test passes the ports it looks at."""
    route = SendRoute(submitter, sent or FakeSentFolder())
    return await handlers.send_message(
        cmd, credentials=FakeCredentials(ACCOUNT), route=lambda agent_id, account: route,
        ledger=ledger, policy=policy or FakePolicy(), content=store or MemoryContentStore(),
        clock=FixedClock(),
    )  # fmt: skip
