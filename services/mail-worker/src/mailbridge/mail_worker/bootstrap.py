"""The composition root of the mail-worker: the only place that builds its adapters.

``build`` makes the adapters on the service's resources, registers the subscribers and answers the
``Service``: its container of ports, its streams, and the parts that open once connected (the KV
buckets of the ledger, the cursors and the API pacing, the content bucket, the consumer's
settings, the command slots that drain on stop, the mail sessions that log out on stop, the
providers' API client that closes on stop, and the watches of mailboxes with IDLE with their
leases).
``python -m mailbridge.mail_worker`` runs it with ``mailbridge.shared.service.run``.
"""

from __future__ import annotations

import dataclasses

from faststream.nats import NatsBroker

from mailbridge.mail_worker.adapters.api_calls import Unpaced
from mailbridge.mail_worker.adapters.api_http import ApiHttp
from mailbridge.mail_worker.adapters.credentials import CachedCredentials, NatsCredentialsSource
from mailbridge.mail_worker.adapters.cursors import BUCKET as CURSOR_BUCKET
from mailbridge.mail_worker.adapters.cursors import NatsKvCursorStore
from mailbridge.mail_worker.adapters.gmail import GmailApi
from mailbridge.mail_worker.adapters.graph import GraphApi
from mailbridge.mail_worker.adapters.imap import AioimaplibMailboxReader
from mailbridge.mail_worker.adapters.kv import JsonBucket
from mailbridge.mail_worker.adapters.ledger import BUCKET as LEDGER_BUCKET
from mailbridge.mail_worker.adapters.ledger import WEEK_SECONDS, NatsKvSendLedger
from mailbridge.mail_worker.adapters.network import AddressGuard, Network
from mailbridge.mail_worker.adapters.pacing import NatsKvPacing, pacing_limits
from mailbridge.mail_worker.adapters.policy import NatsContactBook, NatsSendPolicy
from mailbridge.mail_worker.adapters.sessions import HostBudget, SessionLimits
from mailbridge.mail_worker.adapters.smtp import AiosmtplibSmtp
from mailbridge.mail_worker.adapters.tokens import NatsTokenSource
from mailbridge.mail_worker.adapters.watch_leases import NatsKvWatchLeases
from mailbridge.mail_worker.container import Container
from mailbridge.mail_worker.entrypoints import commands, config_events, reading
from mailbridge.mail_worker.entrypoints.backlog import ConsumerBacklog
from mailbridge.mail_worker.entrypoints.metrics import WorkerMetrics
from mailbridge.mail_worker.entrypoints.slots import CommandSlots
from mailbridge.mail_worker.entrypoints.watchers import WatchSupervisor
from mailbridge.mail_worker.ports import MailApi, Pacing, PollLimits, PushInbox
from mailbridge.mail_worker.settings import MailWorkerSettings
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.content import NatsObjectContentStore
from mailbridge.shared.messages import Provider
from mailbridge.shared.outbound import tls_context
from mailbridge.shared.service import NatsService, Part, Resources, Service, closing
from mailbridge.shared.streams import MAIL_CMD, MAIL_EVT


def build(settings: MailWorkerSettings, r: Resources) -> Service[Container]:
    ledger_bucket = JsonBucket(LEDGER_BUCKET, ttl_seconds=WEEK_SECONDS)
    cursor_bucket = JsonBucket(CURSOR_BUCKET)
    content = NatsObjectContentStore()
    mailbox, smtp = _mail_sessions(settings, NatsTokenSource(r.bus, settings.token_timeout_seconds))
    pacing = NatsKvPacing(pacing_limits(settings))
    apis, api_http = build_mail_apis(settings, r.bus, pacing)
    credentials = CachedCredentials(
        NatsCredentialsSource(r.bus, settings.credentials_timeout_seconds)
    )
    container = Container(
        publisher=r.bus,
        credentials=credentials,
        fresh_credentials=credentials.uncached,
        credential_cache=credentials,
        mailbox=mailbox,
        inbox=mailbox,
        browser=mailbox,
        sent_folder=mailbox,
        sent_search=mailbox,
        submission=smtp,
        submitter=smtp,
        ledger=NatsKvSendLedger(ledger_bucket),
        cursors=NatsKvCursorStore(cursor_bucket),
        content=content,
        policy=NatsSendPolicy(r.bus, settings.policy_timeout_seconds),
        contacts=NatsContactBook(r.bus),
        limits=PollLimits(
            settings.poll_backlog,
            settings.poll_batch,
            settings.max_message_bytes,
            settings.trusted_authserv_id,
        ),
        metrics=WorkerMetrics(r.registry),
        apis=apis,
    )
    container, watching = _with_watches(container, mailbox, settings)
    slots = _register(r.broker, settings, container)
    parts: tuple[Part, ...] = (ledger_bucket, cursor_bucket, pacing, content, *watching)
    backlog = ConsumerBacklog(settings, container.metrics)
    parts = (*parts, commands.ConsumerSettings(settings), backlog, slots)
    closed = (closing(smtp), closing(mailbox), closing(api_http))
    return Service(container, streams=(MAIL_CMD, MAIL_EVT), parts=(*parts, *closed))


def _with_watches(
    container: Container, push: PushInbox, settings: MailWorkerSettings
) -> tuple[Container, tuple[Part, ...]]:
    """The container whose commands and config events know the watched mailboxes, and the
    parts that watch them (none when IDLE is switched off: polls read every mailbox)."""
    if not settings.imap_idle:
        return container, ()
    leases = NatsKvWatchLeases(settings.watch_lease_seconds)
    supervisor = WatchSupervisor(container, push, leases, settings)
    return dataclasses.replace(container, watches=supervisor), (leases, supervisor)


def _mail_sessions(
    settings: MailWorkerSettings, tokens: NatsTokenSource
) -> tuple[AioimaplibMailboxReader, AiosmtplibSmtp]:
    """IMAP and SMTP, each connecting only to the address its guard checked, within one budget
    of sessions per host; an XOAUTH2 account logs in with the oauth-broker's mail token."""
    timeout = settings.connect_timeout_seconds
    guard = AddressGuard(allow_internal=settings.allow_private_hosts, timeout=timeout)
    network = Network(guard, tls_context(settings.tls_ca_file), timeout)
    sessions = SessionLimits(HostBudget(settings.max_sessions_per_host))
    reader = AioimaplibMailboxReader(network, sessions, tokens)
    return reader, AiosmtplibSmtp(network, sessions, tokens)


def build_mail_apis(
    settings: MailWorkerSettings, bus: NatsBus, pacing: Pacing | None = None
) -> tuple[dict[Provider, MailApi], ApiHttp]:
    """The providers whose mailboxes are tested through their API, on one HTTP client, with
    the oauth-broker's access tokens; every other provider is tested over IMAP and SMTP."""
    http = ApiHttp(ca_file=settings.oauth_ca_file, timeout=settings.api_timeout_seconds)
    tokens = NatsTokenSource(bus, settings.token_timeout_seconds)
    pacing = pacing or Unpaced()  # a single process (the tests) needs no shared pacing
    apis: dict[Provider, MailApi] = {
        Provider.GOOGLE: GmailApi(http, tokens, pacing, settings.gmail_api_url),
        Provider.MICROSOFT: GraphApi(http, tokens, pacing, settings.graph_api_url),
    }
    return apis, http


def _register(
    broker: NatsBroker, settings: MailWorkerSettings, container: Container
) -> CommandSlots:
    """The subscribers; answers the command slots, the part that drains commands on stop."""
    config_events.register(broker, container)
    reading.register(broker, settings, container)
    return commands.register(broker, settings, container)


SERVICE = NatsService(name="mail-worker", build=build)
