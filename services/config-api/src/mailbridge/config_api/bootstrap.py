"""The composition root of config-api: the only place that builds its adapters.

``build`` makes the adapters on the service's resources (its migrated pool, the sealer, a broker not
yet connected), registers the NATS subscribers and answers the ``Service``: the container of ports
the routes use, the streams, and the parts that run once connected (the live feed, the outbox relay,
the poll scheduler, the audit trail's purge and the approval expiry). ``app.create_app`` starts it
with ``mailbridge.shared.service.start`` in its lifespan, so uvicorn's process starts and stops it
like every other service's.
"""

from __future__ import annotations

from datetime import timedelta

from mailbridge.config_api.adapters import dns
from mailbridge.config_api.adapters.agent_tokens import PostgresAgentTokenStore
from mailbridge.config_api.adapters.api_keys import CachedKeyLookup, PostgresApiKeyStore
from mailbridge.config_api.adapters.approvals import PostgresApprovals
from mailbridge.config_api.adapters.audit import AuditPurge, PostgresAuditLog
from mailbridge.config_api.adapters.autoconfig import GuardedAutoconfigFetcher
from mailbridge.config_api.adapters.detection_cache import MemoryDetectionCache
from mailbridge.config_api.adapters.live import LiveStatusFeed
from mailbridge.config_api.adapters.mail_reader import NatsMailReader
from mailbridge.config_api.adapters.oauth_broker import NatsOAuthBroker
from mailbridge.config_api.adapters.policy import NatsPolicyService
from mailbridge.config_api.adapters.poll_scheduler import PollScheduler
from mailbridge.config_api.adapters.postgres import (
    MIGRATIONS,
    SCHEMA,
    PostgresConfigRepository,
)
from mailbridge.config_api.adapters.results import PendingTestResults
from mailbridge.config_api.adapters.revoker import NatsGrantRevoker
from mailbridge.config_api.adapters.sends import PostgresSendLedger, settle_dead_send
from mailbridge.config_api.adapters.ui_sessions import PostgresUiSessionStore
from mailbridge.config_api.container import Container
from mailbridge.config_api.entrypoints import nats
from mailbridge.config_api.entrypoints.approval_expiry import ApprovalExpiry
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.clock import SystemClock
from mailbridge.shared.content import NatsObjectContentStore
from mailbridge.shared.outbound import tls_context
from mailbridge.shared.outbox import OutboxRelay
from mailbridge.shared.service import DatabaseResources, DatabaseService, Service, looping
from mailbridge.shared.streams import CONFIG_EVT, MAIL_CMD, MAIL_EVT, OAUTH_EVT, POLICY_EVT

# its own events; the commands it queues; the events it consumes or streams to the UI
STREAMS = (CONFIG_EVT, MAIL_CMD, MAIL_EVT, OAUTH_EVT, POLICY_EVT)


def build(settings: ConfigApiSettings, r: DatabaseResources) -> Service[Container]:
    relay = OutboxRelay(
        r.pool, r.broker, schema=SCHEMA, registry=r.registry, on_dead_letter=settle_dead_send
    )
    content, live = NatsObjectContentStore(), LiveStatusFeed(settings.sse_heartbeat_seconds)
    mail_dns, autoconfig = detection_sources(settings)
    audit = PostgresAuditLog(r.pool)
    container = Container(
        settings=settings,
        repo=PostgresConfigRepository(r.pool, on_outbox_write=relay.notify),
        ledger=PostgresSendLedger(
            r.pool, on_outbox_write=relay.notify, hold_lifetime=settings.approval_lifetime()
        ),
        approvals=PostgresApprovals(r.pool, on_outbox_write=relay.notify),
        content=content,
        policy=NatsPolicyService(
            r.bus, settings.policy_timeout_seconds, settings.policy_effective_timeout_seconds
        ),
        commands=r.bus,
        results=PendingTestResults(),
        keys=CachedKeyLookup(PostgresApiKeyStore(r.pool), settings.api_key_cache_seconds),
        agent_tokens=PostgresAgentTokenStore(r.pool),
        ui_sessions=PostgresUiSessionStore(r.pool),
        revoker=NatsGrantRevoker(r.bus, settings.oauth_provider_timeout_seconds),
        oauth=NatsOAuthBroker(
            r.bus, settings.oauth_broker_timeout_seconds, settings.oauth_provider_timeout_seconds
        ),
        live=live,
        sealer=r.sealer,
        readiness=r.readiness,
        mail_dns=mail_dns,
        autoconfig=autoconfig,
        detections=MemoryDetectionCache(
            settings.detect_cache_seconds, settings.detect_cache_entries
        ),
        mail=NatsMailReader(r.bus, settings.read_timeout_seconds),
        audit=audit,
    )
    nats.register(r.broker, container)
    scheduler = PollScheduler(
        r.pool, r.bus, SystemClock(),
        interval=settings.poll_interval_seconds, tick=settings.poll_tick_seconds,
        registry=r.registry,
    )  # fmt: skip
    purge = AuditPurge(audit, SystemClock(), timedelta(days=settings.audit_retention_days))
    expiry = ApprovalExpiry(container.approvals, content, container.clock, settings)
    parts = (content, live, relay, looping(scheduler), looping(purge), looping(expiry))
    return Service(container, streams=STREAMS, parts=parts)


def detection_sources(
    settings: ConfigApiSettings, autoconfig_port: int = 443
) -> tuple[dns.DnspythonMailDns, GuardedAutoconfigFetcher]:
    """Settings detection's DNS, and its autoconfig fetcher, which checks hosts with that DNS
    (on the standard's HTTPS port; a test's server listens on another)."""
    resolver = dns.resolver(settings.dns_resolver_address, settings.detect_dns_timeout_seconds)
    mail_dns = dns.DnspythonMailDns(resolver)
    return mail_dns, GuardedAutoconfigFetcher(
        resolve=mail_dns.addresses,
        allow_internal=settings.allow_private_hosts,
        tls=tls_context(settings.tls_ca_file),
        timeout=settings.detect_autoconfig_timeout_seconds,
        port=autoconfig_port,
    )


SERVICE = DatabaseService(name="config-api", schema=SCHEMA, migrations=MIGRATIONS, build=build)
