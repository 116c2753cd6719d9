"""The composition root of the mail-worker: builds its adapters and wires the command routes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from faststream.nats import NatsBroker
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from mailbridge.mail_worker import handlers
from mailbridge.mail_worker.adapters.credentials import CachedCredentials, NatsCredentialsSource
from mailbridge.mail_worker.adapters.cursors import BUCKET as CURSOR_BUCKET
from mailbridge.mail_worker.adapters.cursors import NatsKvCursorStore
from mailbridge.mail_worker.adapters.imap import AioimaplibMailboxReader
from mailbridge.mail_worker.adapters.kv import JsonBucket, open_bucket
from mailbridge.mail_worker.adapters.ledger import BUCKET as LEDGER_BUCKET
from mailbridge.mail_worker.adapters.ledger import WEEK_SECONDS, NatsKvSendLedger
from mailbridge.mail_worker.adapters.network import AddressGuard, Network, tls_context
from mailbridge.mail_worker.adapters.policy import NatsSendPolicy
from mailbridge.mail_worker.adapters.sessions import HostBudget, SessionLimits
from mailbridge.mail_worker.adapters.smtp import AiosmtplibSmtp
from mailbridge.mail_worker.entrypoints import commands
from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.ports import CursorStore, PollLimits, SendLedger, SendPolicy
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.clock import Clock, SystemClock
from mailbridge.shared.content import NatsObjectContentStore
from mailbridge.shared.errors import ErrorCode, PermanentError, RetryableError
from mailbridge.shared.messages import (
    AgentUpdated,
    EmailConfigDeleted,
    EmailConfigSaved,
    Event,
    PollMailbox,
    SendMessage,
    TestConnection,
)
from mailbridge.shared.runtime import build_broker, nats_ready, serve_health_rpc, setup_telemetry
from mailbridge.shared.streams import MAIL_CMD, MAIL_EVT, ensure_streams

SERVICE = "mail-worker"
OWNED_STREAMS = (MAIL_CMD, MAIL_EVT)

log = logging.getLogger(__name__)


@dataclass
class Worker:
    settings: MailWorkerSettings
    broker: NatsBroker
    bus: NatsBus
    credentials: CachedCredentials
    mailbox: AioimaplibMailboxReader
    smtp: AiosmtplibSmtp
    policy: SendPolicy
    limits: PollLimits
    metrics: WorkerMetrics
    content: NatsObjectContentStore = field(default_factory=NatsObjectContentStore)
    ledger: SendLedger | None = None  # opened once connected (NATS KV buckets)
    cursors: CursorStore | None = None
    clock: Clock = field(default_factory=SystemClock)

    async def run_test(self, body: bytes, last: bool) -> None:
        command = TestConnection.model_validate_json(body)
        if handlers.is_expired(command, self.clock):
            log.info("skipping expired connection test %s", command.command_id)
            return
        result = await handlers.test_connection(
            command,
            credentials=self.credentials.uncached,
            mailbox=self.mailbox,
            submission=self.smtp,
        )
        await self.bus.publish(result)

    async def run_send(self, body: bytes, last: bool) -> None:
        """Publish the outcome; a failure that no retry will mend is published, then termed."""
        command = await self._decoded_send(body)
        assert self.ledger is not None, "prepare_streams opens the ledger before consuming"
        try:
            events = await handlers.send_message(
                command, credentials=self.credentials, submitter=self.smtp,
                sent_folder=self.mailbox, ledger=self.ledger, policy=self.policy,
                content=self.content, clock=self.clock,
            )  # fmt: skip
        except PermanentError as exc:
            await self._settled(command, [handlers.send_failed(command, exc)])
            raise
        except RetryableError as exc:
            if not last:
                raise
            await self._settled(command, [handlers.send_failed(command, exc)])
            raise PermanentError(exc.code, exc.detail) from exc
        await self._settled(command, events)

    async def _decoded_send(self, body: bytes) -> SendMessage:
        """A command that does not decode is never sent; when it names its agent and command id,
        its sender hears so (``failed``, ``invalid_input``) instead of waiting on ``queued``."""
        try:
            return SendMessage.model_validate_json(body)
        except ValidationError as exc:
            if (failure := handlers.undecodable_send(body, exc)) is not None:
                await self.bus.publish(failure)
            raise PermanentError(ErrorCode.INVALID_INPUT, "undecodable send command") from exc

    async def _settled(self, command: SendMessage, events: list[Event]) -> None:
        """Publish the outcome; the send is settled, so its out-of-band content goes."""
        for event in events:
            await self.bus.publish(event)
        if command.content_ref is not None:
            await self.content.delete(command.content_ref)

    async def run_poll(self, body: bytes, last: bool) -> None:
        """Publish each new message (deduplicated by mailbox and UID), then move the cursor."""
        command = PollMailbox.model_validate_json(body)
        assert self.cursors is not None, "prepare_streams opens the cursors before consuming"
        events, cursor = await handlers.poll_mailbox(
            command, credentials=self.credentials, inbox=self.mailbox,
            cursors=self.cursors, limits=self.limits,
        )  # fmt: skip
        for event in events:
            await self.bus.publish(event)
        await self.cursors.put(command.agent_id, cursor)

    async def close(self) -> None:
        """Idle SMTP and IMAP sessions log out."""
        await self.smtp.close()
        await self.mailbox.close()

    async def readiness(self) -> dict[str, bool]:
        return await nats_ready(self.broker)

    async def prepare_streams(self) -> None:
        js = self.broker.connection.jetstream()
        await ensure_streams(js, OWNED_STREAMS)
        await commands.apply_consumer_settings(js, self.settings)
        ledger = await open_bucket(js, LEDGER_BUCKET, ttl_seconds=WEEK_SECONDS)
        self.ledger = NatsKvSendLedger(JsonBucket(ledger))
        self.cursors = NatsKvCursorStore(JsonBucket(await open_bucket(js, CURSOR_BUCKET)))
        await self.content.open(js)


def _forget_changed_credentials(broker: NatsBroker, cache: CachedCredentials) -> None:
    """Every replica hears a saved or deleted config and a re-linked agent (no queue group) and
    drops its entry, so the next send reads the new link that policy checks it against."""

    @broker.subscriber(EmailConfigSaved.subscription())
    async def config_saved(event: EmailConfigSaved) -> None:
        cache.forget(event.agent_id)

    @broker.subscriber(EmailConfigDeleted.subscription())
    async def config_deleted(event: EmailConfigDeleted) -> None:
        cache.forget(event.agent_id)

    @broker.subscriber(AgentUpdated.subscription())
    async def agent_updated(event: AgentUpdated) -> None:
        cache.forget(event.agent_id)  # its org or client org, which policy checks sends against


def build_worker(settings: MailWorkerSettings, provider: TracerProvider | None = None) -> Worker:
    """Build the adapters and register the subscribers; nothing connects until the broker does.
    Without a ``provider`` the process's logging and tracing are set up here."""
    if provider is None:
        provider = setup_telemetry(SERVICE, settings)
    broker = build_broker(settings, provider)
    bus = NatsBus(broker)
    timeout = settings.connect_timeout_seconds
    guard = AddressGuard(allow_internal=settings.allow_private_hosts, timeout=timeout)
    network = Network(guard, tls_context(settings.tls_ca_file), timeout)
    sessions = SessionLimits(HostBudget(settings.max_sessions_per_host))
    worker = Worker(
        settings=settings,
        broker=broker,
        bus=bus,
        credentials=CachedCredentials(
            NatsCredentialsSource(bus, settings.credentials_timeout_seconds)
        ),
        mailbox=AioimaplibMailboxReader(network, sessions),
        smtp=AiosmtplibSmtp(network, sessions),
        policy=NatsSendPolicy(bus, settings.policy_timeout_seconds),
        limits=PollLimits(settings.poll_backlog, settings.poll_batch, settings.max_message_bytes),
        metrics=WorkerMetrics(CollectorRegistry()),
    )
    routes = {
        commands.route_of(TestConnection): worker.run_test,
        commands.route_of(SendMessage): worker.run_send,
        commands.route_of(PollMailbox): worker.run_poll,
    }
    commands.register(broker, settings, routes, worker.metrics)
    serve_health_rpc(broker, SERVICE, worker.readiness)
    _forget_changed_credentials(broker, worker.credentials)
    return worker
