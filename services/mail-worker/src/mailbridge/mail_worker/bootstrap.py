"""The composition root of the mail-worker: builds its adapters and wires the command routes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from faststream.nats import NatsBroker

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.adapters.credentials import NatsCredentialsSource
from mailbridge.mail_worker.adapters.imap import AioimaplibMailboxReader
from mailbridge.mail_worker.adapters.network import AddressGuard, tls_context
from mailbridge.mail_worker.adapters.smtp import AiosmtplibSubmissionChecker
from mailbridge.mail_worker.entrypoints import commands
from mailbridge.mail_worker.ports import CredentialsSource, MailboxReader, SubmissionChecker
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.clock import Clock, SystemClock
from mailbridge.shared.messages import TestConnection
from mailbridge.shared.runtime import build_broker, nats_ready, serve_health_rpc, setup_telemetry
from mailbridge.shared.streams import MAIL_CMD, MAIL_EVT, ensure_streams

SERVICE = "mail-worker"
OWNED_STREAMS = (MAIL_CMD, MAIL_EVT)

log = logging.getLogger(__name__)


@dataclass
class Worker:
    broker: NatsBroker
    bus: NatsBus
    credentials: CredentialsSource
    mailbox: MailboxReader
    submission: SubmissionChecker
    clock: Clock = field(default_factory=SystemClock)

    async def run_test(self, body: bytes) -> None:
        command = TestConnection.model_validate_json(body)
        if handlers.is_expired(command, self.clock):
            log.info("skipping expired connection test %s", command.command_id)
            return
        result = await handlers.test_connection(
            command, credentials=self.credentials, mailbox=self.mailbox, submission=self.submission
        )
        await self.bus.publish(result)

    async def readiness(self) -> dict[str, bool]:
        return await nats_ready(self.broker)

    async def prepare_streams(self) -> None:
        await ensure_streams(self.broker.connection.jetstream(), OWNED_STREAMS)


def build_worker(settings: MailWorkerSettings) -> Worker:
    provider = setup_telemetry(SERVICE, settings)
    broker = build_broker(settings, provider)
    bus = NatsBus(broker)
    tls = tls_context(settings.tls_ca_file)
    guard = AddressGuard(
        allow_internal=settings.allow_private_hosts, timeout=settings.connect_timeout_seconds
    )
    timeout = settings.connect_timeout_seconds
    worker = Worker(
        broker=broker,
        bus=bus,
        credentials=NatsCredentialsSource(bus, settings.credentials_timeout_seconds),
        mailbox=AioimaplibMailboxReader(tls=tls, guard=guard, timeout=timeout),
        submission=AiosmtplibSubmissionChecker(tls=tls, guard=guard, timeout=timeout),
    )
    commands.register(broker, settings, {commands.test_route(): worker.run_test})
    serve_health_rpc(broker, SERVICE, worker.readiness)
    return worker
